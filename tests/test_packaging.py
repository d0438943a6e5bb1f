"""Packaging: a wheel build prints no setuptools warnings and ships every bundled asset."""
import shutil, subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


def test_wheel_builds_quietly_with_every_asset(tmp_path):
    "Built from a copy of the tracked files (the checkout stays clean), offline, with the venv's setuptools."
    src = tmp_path / "src"
    for rel in _tracked_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check",
                        "-w", str(tmp_path / "whl"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    log = r.stdout + r.stderr
    assert "Package would be ignored" not in log and "warning" not in log.lower(), log
    (whl,) = (tmp_path / "whl").glob("*.whl")
    shipped = set(zipfile.ZipFile(whl).namelist())
    assets = {p for p in _tracked_files() if p.startswith("jukebox_nb/assets/")}
    assert assets and assets <= shipped, sorted(assets - shipped)
