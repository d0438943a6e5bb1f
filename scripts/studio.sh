#!/usr/bin/env bash
# Open the studio in JupyterLab. configs/jupyter/jupyter_server_config.py strips outputs from every
# notebook saved under nbs/, so running the studio (autosave included) never changes the tracked
# nbs/studio.ipynb. Extra arguments go to `jupyter lab` (e.g. --port 8890, --no-browser).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
JUPYTER="$ROOT/.venv/bin/jupyter"; [ -x "$JUPYTER" ] || JUPYTER=jupyter
export JUPYTER_CONFIG_PATH="$ROOT/configs/jupyter${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
cd "$ROOT"
exec "$JUPYTER" lab "$@" nbs/studio.ipynb
