"""Render `nbs/index.ipynb` to `README.md` (nbdev_readme needs quarto, which cannot be installed offline).

Markdown cells are copied as they are; code cells become fenced Python blocks; hidden cells
(`#|hide`) are left out. `--check` exits 1 when README.md is out of date instead of writing it.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->\n\n"


def render(nb_path: Path) -> str:
    "The README text for the notebook at `nb_path`."
    parts = []
    for cell in json.loads(nb_path.read_text())["cells"]:
        src = "".join(cell["source"]).strip()
        if not src or src.startswith("#|hide") or src.startswith("#| hide"): continue
        parts.append(src if cell["cell_type"] == "markdown" else f"```python\n{src}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    text, readme = render(ROOT / "nbs" / "index.ipynb"), ROOT / "README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            print("README.md is out of date with nbs/index.ipynb — run `python scripts/make_readme.py`.")
            sys.exit(1)
        print("readme check: README.md matches nbs/index.ipynb")
    else:
        tmp = readme.with_suffix(".md.tmp"); tmp.write_text(text); tmp.replace(readme)
