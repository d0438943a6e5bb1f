#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv. Idempotent: a second run with
# unchanged settings.ini / setup.py only checks a stamp. torch==2.13.0 goes in first, on purpose:
# any other spec (or letting accelerate pull torch) resolves to a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=.venv
want=$(cat settings.ini setup.py scripts/setup.sh | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "[setup] preparing $VENV (first run takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# -qq: pip's and the build backend's warnings stay out of the way (setuptools' "Editable installation" notice,
# an unused find-links location); errors still print, and our own [setup] lines say what is happening
PIP=("$VENV/bin/python" -m pip install -qq --disable-pip-version-check)
"${PIP[@]}" --upgrade pip >&2 || true
echo "[setup] torch 2.13.0 (CPU build where this machine has one)" >&2
"${PIP[@]}" 'torch==2.13.0' >&2
echo "[setup] jukebox-nb and its dev tools (pip install -e '.[dev]')" >&2
"${PIP[@]}" -e '.[dev]' >&2
echo "$want" > "$VENV/.setup-stamp"
echo "[setup] done" >&2
