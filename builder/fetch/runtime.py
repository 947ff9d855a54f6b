"""What yt-dlp needs around it for YouTube: a JavaScript runtime, the EJS scripts, a cache folder.

Since yt-dlp 2025.11.12 YouTube extraction solves the player's JavaScript
challenges with an external runtime (Deno by default; Node, QuickJS and Bun
also work) running yt-dlp's challenge-solver scripts (the ``yt-dlp-ejs``
package, part of ``yt-dlp[default]``). llinet installs both; this module finds
them, turns the command-line spellings into yt-dlp's parameters and says where
yt-dlp keeps its cache.

Nothing here imports yt-dlp at module level: the options are checked in the
main process, which never downloads.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import InputError

# yt-dlp's names, in its order of priority (yt_dlp/options.py, --js-runtimes).
JS_RUNTIMES = ("deno", "node", "quickjs", "bun")
EJS_PACKAGE = "yt-dlp-ejs"
EJS_WIKI = "https://github.com/yt-dlp/yt-dlp/wiki/EJS"
_IE_KEY = re.compile(r"^[\w-]+$")


def parse_js_runtime(spec: str) -> tuple[str, str | None]:
    """``NAME[:PATH]`` (yt-dlp's ``--js-runtimes`` spelling) -> (name, path or None).

    PATH is the executable or the folder that holds it."""
    name, sep, path = spec.partition(":")
    name = name.strip().lower()
    if name not in JS_RUNTIMES:
        raise InputError(f"--js-runtime {spec!r}: the runtime must be one of {', '.join(JS_RUNTIMES)}")
    if sep and not path:
        raise InputError(f"--js-runtime {spec!r}: empty path after ':'")
    if path and not Path(path).exists():
        raise InputError(f"--js-runtime {spec!r}: no such file or folder", file=path)
    return name, path or None


def find_deno() -> Path | None:
    """The Deno installed with llinet: the ``deno`` package puts it next to this Python (the venv's
    bin folder, found even when the venv is not activated); else a ``deno`` on PATH."""
    beside = Path(sys.executable).parent / "deno"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("deno")
    return Path(found) if found else None


def js_runtimes_param(spec: str | None) -> dict[str, dict[str, Any]]:
    """yt-dlp's ``js_runtimes`` parameter: ``{name: {"path": ...}}``.

    No spec: Deno, at the path :func:`find_deno` gives (yt-dlp itself would look only on PATH
    and in the scripts folder of the Python that runs it)."""
    if spec is None:
        deno = find_deno()
        return {"deno": {"path": str(deno)} if deno is not None else {}}
    name, path = parse_js_runtime(spec)
    return {name: {"path": path} if path else {}}


@dataclass(frozen=True)
class RuntimeReport:
    name: str
    path: str | None             # the executable yt-dlp will run; None when not found
    version: str | None
    supported: bool              # found, and at least the version yt-dlp needs


def inspect_js_runtime(spec: str | None) -> RuntimeReport:
    """Ask yt-dlp's own runtime probe (the one ``yt-dlp -v`` reports) about the runtime fetch will use."""
    import yt_dlp  # noqa: F401 - registers yt-dlp's runtime classes
    from yt_dlp.globals import supported_js_runtimes

    ((name, config),) = js_runtimes_param(spec).items()
    runtime = supported_js_runtimes.value[name](path=config.get("path"))
    info = runtime.info
    if info is None:
        return RuntimeReport(name, config.get("path"), None, False)
    return RuntimeReport(info.name, info.path, info.version, bool(info.supported))


def ejs_version() -> str | None:
    """Version of the EJS challenge-solver scripts yt-dlp would load; None when not installed."""
    if importlib.util.find_spec("yt_dlp_ejs") is None:
        return None
    try:
        return importlib.metadata.version(EJS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def parse_extractor_args(specs: tuple[str, ...] | list[str]) -> dict[str, dict[str, list[str]]]:
    """yt-dlp's ``--extractor-args IE_KEY:ARG=V1,V2;ARG2=V`` -> ``{ie_key: {arg: [values]}}``.

    The spelling is yt-dlp's (argument names lower-cased, ``-`` read as ``_``, ``\\,`` for a comma
    inside a value); several options for one extractor add up."""
    out: dict[str, dict[str, list[str]]] = {}
    for spec in specs:
        key, sep, rest = spec.partition(":")
        key = key.strip().lower()
        if not sep or not _IE_KEY.match(key) or not rest.strip():
            raise InputError(f"--extractor-args {spec!r}: expected IE_KEY:ARG=VALUE[,VALUE...][;ARG=...] "
                             f"(e.g. youtube:player_client=default,mweb)")
        args = out.setdefault(key, {})
        for item in rest.split(";"):
            if not item.strip():
                continue
            name, _, values = item.partition("=")
            name = name.strip().lower().replace("-", "_")
            if not name:
                raise InputError(f"--extractor-args {spec!r}: an argument without a name in {item!r}")
            args[name] = [v.replace("\\,", ",").strip() for v in re.split(r"(?<!\\),", values)]
    return out


def default_cache_dir() -> Path:
    """yt-dlp's own cache folder on this machine: ``$XDG_CACHE_HOME/yt-dlp`` or ``~/.cache/yt-dlp``.

    Shared with the user's yt-dlp command: YouTube's player JavaScript and its solved challenges are
    fetched once per player version, not once per clip. yt-dlp writes each cache entry to a temporary
    file and renames it into place, so the workers of one machine can share the folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(os.path.expanduser(base)) / "yt-dlp"
