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
    assert t["prior"] < t["decode"] < t["checkpoints"] < t["sampling"] < t["compose"] < t["studio"] < t["training"]


def test_detects_an_upward_import(tmp_path):
    (tmp_path / "core.py").write_text("from .audio import load_audio\n")
    (tmp_path / "audio.py").write_text("from jukebox_nb.core import exists\nimport jukebox_nb.core\n")
    assert upward_imports(tmp_path, {"core": 0, "audio": 1}) == ["core (layer 0) imports audio (layer 1)"]


# --- the widgets are views: no torch, no model modules (STYLE §2.1: widgets may import sampling, audio; "no torch") ---
# What the studio needs from a model (`ModelInfo`, `model_info`) lives on the engine's side, in `studio`
# (nbs/10c_studio.ipynb). A fresh `import jukebox_nb.widgets` still loads torch through `sampling` and `studio`
# (and `core`), so the rule is checked on widgets.py's own source: it never imports torch nor names it, and
# imports no module that holds a model.
WIDGETS_MAY_IMPORT = {"core", "audio", "conditioning", "sampling", "studio"}  # conditioning: the lyric tokenizer (text only)
TORCH_MODULES = {"torch", "torchaudio", "torchvision"}


def torch_uses(path: Path) -> list[str]:
    "Every place the file at `path` imports a torch package or uses a name from one (`line: what`)."
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            bad += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in TORCH_MODULES]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in TORCH_MODULES:
            bad.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in TORCH_MODULES:
            bad.append(f"{node.lineno}: uses {node.id}")
    return bad


def test_widgets_import_no_torch():
    assert torch_uses(LIB / "widgets.py") == []


def test_widgets_import_no_model_module():
    assert imports_of(LIB / "widgets.py") - WIDGETS_MAY_IMPORT == set()


def test_torch_uses_are_detected(tmp_path):
    f = tmp_path / "widgets.py"
    f.write_text("import numpy as np\nimport torch.nn as nn\nfrom torch import tensor\n"
                 "def f(x): return torch.as_tensor(x)\nclass T: torch = 1  # a name bound here is not the torch package\n")
    assert torch_uses(f) == ["2: import torch.nn", "3: from torch import ...", "4: uses torch"]
    f.write_text("import numpy as np\nfrom .studio import model_info\n")
    assert torch_uses(f) == []
