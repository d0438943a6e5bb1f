"""JupyterLab for this repository: the notebooks under nbs/ are the source, committed without outputs.

`scripts/studio.sh` starts JupyterLab with this folder on `JUPYTER_CONFIG_PATH` (so does
`JUPYTER_CONFIG_PATH=configs/jupyter jupyter lab`). Every notebook saved under the repository's nbs/
folder is then written without outputs, execution counts or cell metadata (what `nbdev_clean --clear_all`
leaves), so running the studio, autosave included, leaves the tracked nbs/studio.ipynb unchanged.
Notebooks elsewhere (a copy of the studio in your own folder, say) keep their outputs.
"""
from pathlib import Path

NBS = Path(__file__).resolve().parents[2] / "nbs"  # configs/jupyter/ -> the repository's nbs/
KEEP_METADATA = ("kernelspec", "jupytext")  # the notebook metadata a clean notebook keeps


def under_nbs(path: str, root_dir: str, nbs: Path = NBS) -> bool:
    "Is the file at API path `path` of a server rooted at `root_dir` inside `nbs`?"
    try: return (Path(root_dir) / path).resolve().is_relative_to(nbs.resolve())
    except (OSError, ValueError): return False


def strip_outputs(model: dict, path: str, contents_manager, **kwargs):
    "Jupyter pre-save hook: a notebook under nbs/ goes to disk clean (no outputs, counts or metadata)."
    if model.get("type") != "notebook" or not model.get("content"): return
    if not under_nbs(path, getattr(contents_manager, "root_dir", ".")): return
    nb = model["content"]
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code": cell["outputs"], cell["execution_count"] = [], None
        cell["metadata"] = {}
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in KEEP_METADATA}
    spec = nb["metadata"].get("kernelspec")
    if spec and spec.get("name"): spec["display_name"] = spec["name"]  # as nbdev_clean writes it


if "c" in globals():  # loaded by Jupyter as a config file (`c` is its config object)
    c.ContentsManager.pre_save_hook = strip_outputs  # noqa: F821
