#!/usr/bin/env bash
# The whole test suite: set up .venv, check the exported library matches the notebooks, execute
# every notebook (nbdev_test) and run pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0 MPLBACKEND=Agg
echo "== export check: nbs/ vs jukebox_nb/"
python scripts/check_export.py
python scripts/make_readme.py --check
echo "== nbdev_test (every notebook, CPU)"
nbdev_test --n_workers 2 --timing
echo "== pytest"
python -m pytest -m "not slow and not gpu and not download" "$@"
