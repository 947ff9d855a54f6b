#!/usr/bin/env bash
# Set up llinet on a fresh Debian/Ubuntu machine: system ffmpeg, a venv in .venv,
# and llinet with the tested dependency versions (constraints.txt). Safe to rerun: it only installs
# what is missing or at another version.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ffmpeg/ffprobe for the media stages; Debian's chromium for the review page's browser tests
# (Playwright drives /usr/bin/chromium: its own browser download cannot work offline).
missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
[ "${LLINET_NO_CHROMIUM:-}" = 1 ] || command -v chromium >/dev/null || missing+=(chromium)
# A C++ compiler and Python's headers: torch.compile (llinet-train --compile) builds its CPU kernels
# (with Python bindings) with them.
PY=${PYTHON:-python3}
command -v g++ >/dev/null || missing+=(g++)
[ -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || missing+=(python3-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "[setup] installing ${missing[*]} (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "llinet needs Python >= 3.11")'
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv"
    "$PY" -m venv .venv
fi
echo "[setup] installing llinet and the tested dependency set (constraints.txt) into .venv (first time: a few minutes, ~8 GB)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "[setup] done: ffmpeg $(ffmpeg -version | head -n1 | cut -d' ' -f3), $(.venv/bin/python --version)"
