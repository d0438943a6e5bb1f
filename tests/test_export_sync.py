"""The library must be what `nbdev_export` makes of the notebooks, and README.md what index.ipynb says."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "scripts" / "check_export.py"


def run_check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), str(root)], capture_output=True, text=True)


def copy_project(dest: Path) -> Path:
    for name in ("settings.ini",): shutil.copy(ROOT / name, dest / name)
    for name in ("nbs", "jukebox_nb"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return dest


def test_library_matches_notebooks():
    res = run_check(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_unexported_edit_is_caught_and_export_fixes_it(tmp_path):
    proj = copy_project(tmp_path)
    nb_path = proj / "nbs" / "00_core.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "deadbeef", "metadata": {},
                        "outputs": [], "source": ["#|export\n", "def added_in_notebook(): return 42"]})
    nb_path.write_text(json.dumps(nb, indent=1))
    res = run_check(proj)
    assert res.returncode == 1 and "jukebox_nb/core.py" in res.stdout
    subprocess.run([str(Path(sys.executable).parent / "nbdev_export")], cwd=proj, check=True, capture_output=True)
    assert run_check(proj).returncode == 0
    assert "added_in_notebook" in (proj / "jukebox_nb" / "core.py").read_text()


def test_readme_is_generated_from_index():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_readme.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
