#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then `jukebox-nb demo` (sample a song with the bundled models).
# Extra arguments replace the default command (e.g. `bash scripts/demo.sh reconstruct my.wav --out out/`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- demo --out out/demo; fi
exec .venv/bin/jukebox-nb "$@"
