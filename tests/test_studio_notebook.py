"""The tracked nbs/studio.ipynb stays clean when a user runs it (issue 18 item 5).

configs/jupyter/jupyter_server_config.py (loaded by scripts/studio.sh) strips outputs from notebooks
saved under nbs/; tests/browser/test_studio.py checks the same in a real JupyterLab after a run.
"""
import ast
import copy
import json
import runpy
from pathlib import Path

from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "jupyter" / "jupyter_server_config.py"
STUDIO = ROOT / "nbs" / "studio.ipynb"


def ran(nb: dict) -> dict:
    "`nb` as JupyterLab sends it to be saved after a run: outputs, counts, cell and notebook metadata."
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"] = {"jupyter": {"source_hidden": True}, "scrolled": True}
        if cell["cell_type"] == "code":
            cell["execution_count"] = i
            cell["outputs"] = [{"output_type": "execute_result", "execution_count": i, "metadata": {},
                                "data": {"text/plain": ["True"]}}]
    nb["metadata"].update({"language_info": {"name": "python", "version": "3.11.7"},
                           "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    nb["metadata"]["kernelspec"]["display_name"] = "Python 3 (ipykernel)"
    return nb


class Manager:
    def __init__(self, root_dir): self.root_dir = str(root_dir)


def test_the_config_strips_a_run_studio_back_to_the_tracked_notebook():
    c = Config()
    hook = runpy.run_path(str(CONFIG), init_globals={"c": c})["strip_outputs"]
    assert c.ContentsManager.pre_save_hook is hook
    tracked = json.loads(STUDIO.read_text())
    model = {"type": "notebook", "content": ran(tracked)}
    hook(model=model, path="nbs/studio.ipynb", contents_manager=Manager(ROOT))
    assert model["content"] == tracked
    nbs = Manager(ROOT / "nbs")  # a server started inside nbs/
    model = {"type": "notebook", "content": ran(tracked)}
    hook(model=model, path="studio.ipynb", contents_manager=nbs)
    assert model["content"] == tracked


def test_the_config_leaves_notebooks_outside_nbs_alone(tmp_path):
    hook = runpy.run_path(str(CONFIG), init_globals={"c": Config()})["strip_outputs"]
    out = ran(json.loads(STUDIO.read_text()))
    model = {"type": "notebook", "content": copy.deepcopy(out)}
    hook(model=model, path="my-studio.ipynb", contents_manager=Manager(tmp_path))
    assert model["content"] == out
    hook(model={"type": "file", "content": "x"}, path="nbs/notes.txt", contents_manager=Manager(ROOT))  # not a notebook: no error


def test_only_the_last_cell_of_the_studio_shows_a_value():
    "A set-up cell ending in an expression prints its value (a stray `True`); only the studio itself should show."
    cells = [c for c in json.loads(STUDIO.read_text())["cells"] if c["cell_type"] == "code"]
    for cell in cells[:-1]:
        last = ast.parse("".join(cell["source"])).body[-1]
        shows = isinstance(last, ast.Expr) and not (isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "") == "print")
        assert not shows, f"this cell ends with an expression whose value is shown: {''.join(cell['source'])[-120:]!r}"
