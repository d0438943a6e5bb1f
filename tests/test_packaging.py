"""Packaging: a wheel build prints no setuptools warnings and ships every bundled asset."""
import shutil, subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


BUILD_INPUTS = ("setup.py", "settings.ini", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "jukebox_nb")


def _copy_sources(dst):
    "What a build reads (no caches, no build leftovers), so the checkout itself stays clean."
    for name in BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir(): shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file(): shutil.copy2(src, dst / name)


def test_wheel_builds_quietly_with_every_asset(tmp_path):
    "Built from a copy of the sources, offline, with the venv's setuptools (a dev requirement)."
    src = tmp_path / "src"; src.mkdir()
    _copy_sources(src)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check",
                        "-w", str(tmp_path / "whl"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    log = r.stdout + r.stderr
    assert "Package would be ignored" not in log and "warning" not in log.lower(), log
    (whl,) = (tmp_path / "whl").glob("*.whl")
    shipped = set(zipfile.ZipFile(whl).namelist())
    assets = {p.relative_to(src).as_posix() for p in (src / "jukebox_nb" / "assets").rglob("*") if p.is_file()}
    assert assets and assets <= shipped, sorted(assets - shipped)
