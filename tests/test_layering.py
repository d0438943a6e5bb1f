"""Dependencies between the library's modules flow one way (see ../shared/STYLE.md §2.1).

A module's layer is the number of the notebook it is exported from (`nbs/04_vqvae.ipynb` → 4; a letter
after the number sits between two layers: `nbs/02b_corpus.ipynb` → 2.2, after `data`); `cli` sits on top.
A module may import only modules of a lower layer.
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "jukebox_nb"
TOP = {"cli": 1000}  # modules that may import everything


def layers() -> dict[str, float]:
    "Module name -> layer, read from the `default_exp` line of every numbered notebook."
    out = dict(TOP)
    for nb in sorted((ROOT / "nbs").glob("[0-9][0-9]*_*.ipynb")):
        num = re.fullmatch(r"(\d\d)([a-z]?)_.*", nb.stem)
        m = re.search(r"#\s*\|\s*default_exp\s+([\w.]+)", nb.read_text())
        if num and m and m.group(1) not in out:
            out[m.group(1)] = int(num[1]) + (ord(num[2]) - ord("a") + 1) / 10 if num[2] else int(num[1])
    return out


def imports_of(path: Path) -> set[str]:
    "Names of jukebox_nb modules imported by the file at `path`."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: found |= {mod.split(".")[0]} if mod else {a.name for a in node.names}
            elif mod.startswith("jukebox_nb."): found.add(mod.split(".")[1])
            elif mod == "jukebox_nb": found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("jukebox_nb.")}
    return found


def upward_imports(lib: Path, table: dict[str, int]) -> list[str]:
    "Every `module -> imported` pair where the import is not from a lower layer."
    bad = []
    for f in sorted(lib.glob("*.py")):
        if f.stem.startswith("_"): continue
        me = table.get(f.stem)
        assert me is not None, f"{f.name} is not exported from a numbered notebook and is not in TOP"
        for dep in sorted(imports_of(f) & set(table)):
            if dep != f.stem and table[dep] >= me: bad.append(f"{f.stem} (layer {me}) imports {dep} (layer {table[dep]})")
    return bad


def test_no_upward_imports():
    assert upward_imports(LIB, layers()) == []


def test_lettered_notebooks_sit_between_layers():
    t = layers()
    assert t["data"] < t["corpus"] < t["bottleneck"]
    assert t["prior"] < t["decode"] < t["checkpoints"] < t["sampling"] < t["compose"] < t["training"]


def test_detects_an_upward_import(tmp_path):
    (tmp_path / "core.py").write_text("from .audio import load_audio\n")
    (tmp_path / "audio.py").write_text("from jukebox_nb.core import exists\nimport jukebox_nb.core\n")
    assert upward_imports(tmp_path, {"core": 0, "audio": 1}) == ["core (layer 0) imports audio (layer 1)"]
