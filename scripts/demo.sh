#!/usr/bin/env bash
# README command 1: set up, then run the offline demo on the bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/llinet-build demo "$@"
