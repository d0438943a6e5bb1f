#!/usr/bin/env bash
# The whole test suite: install the system packages the tests need (as root; otherwise say what to run and
# stop), set up .venv, check the exported library matches the notebooks, execute every notebook (nbdev_test)
# and run pytest. Extra arguments go to pytest. No test is skipped for a missing package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0 MPLBACKEND=Agg
echo "== export check: nbs/ vs jukebox_nb/"
python scripts/check_export.py
python scripts/make_readme.py --check
echo "== nbdev_test (every notebook, CPU)"
nbdev_test --n_workers 2 --timing
echo "== pytest"
python -m pytest -m "not slow and not gpu and not download" "$@"
