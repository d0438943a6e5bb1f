"""Size targets that keep the notebooks readable (issue 19, STYLE §16-17): `sampling.py` reads as the
algorithm (requests, windows, levels, events, results) in at most 800 lines, and no export cell is longer
than 150 lines: a longer one is split into pieces, each with its explanation."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_SAMPLING_LINES = 800
MAX_EXPORT_CELL_LINES = 150
EXPORT = re.compile(r"^#\s*\|\s*export", re.M)  # `#|export`, `#| export`, `#|exports`


def long_export_cells(nbs: Path, limit: int = MAX_EXPORT_CELL_LINES) -> list[str]:
    "`notebook cell N: L lines` for every export cell of the notebooks under `nbs` longer than `limit` lines."
    out = []
    for nb in sorted(nbs.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts: continue
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            src = "".join(c["source"])
            if c["cell_type"] == "code" and EXPORT.search(src) and len(src.splitlines()) > limit:
                out.append(f"{nb.relative_to(nbs)} cell {i}: {len(src.splitlines())} lines")
    return out


def test_sampling_module_is_at_most_800_lines():
    n = len((ROOT / "jukebox_nb" / "sampling.py").read_text().splitlines())
    assert n <= MAX_SAMPLING_LINES, f"sampling.py has {n} lines: give a second idea its own notebook (STYLE §16)"


def test_no_export_cell_over_150_lines():
    assert long_export_cells(ROOT / "nbs") == []


def test_long_export_cells_are_found(tmp_path):
    def cell(src, kind="code"): return {"cell_type": kind, "source": src.splitlines(True)}
    def body(n): return "".join(f"x{i} = {i}\n" for i in range(n))
    cells = [cell("#|export\n" + body(150)), cell("#| export\n" + body(149)), cell(body(151)), cell("#|export\n" + body(150), "markdown")]
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": cells}))
    assert long_export_cells(tmp_path) == ["a.ipynb cell 0: 151 lines"]  # 150 lines pass; unexported code and prose do not count
