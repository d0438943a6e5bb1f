"""Fail when `nbdev_export` would change `jukebox_nb/`: the notebooks in `nbs/` are the source.

Exports a throwaway copy of the project (so the working tree is never touched) and compares every
exported file with the committed one. Exit code 0 = in sync, 1 = out of sync (the files are named).
"""
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
LIB = "jukebox_nb"


def exported_copy(root: Path, dest: Path) -> Path:
    "Copy the files nbdev_export reads and writes into `dest`, export there, return the library path."
    shutil.copy(root / "settings.ini", dest / "settings.ini")
    shutil.copytree(root / "nbs", dest / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(root / LIB, dest / LIB, ignore=shutil.ignore_patterns("__pycache__"))
    exe = shutil.which("nbdev_export") or str(Path(sys.executable).parent / "nbdev_export")
    subprocess.run([exe], cwd=dest, check=True, capture_output=True, text=True)
    return dest / LIB


def differences(root: Path) -> list[str]:
    "Names of library files that a fresh export adds or changes."
    with tempfile.TemporaryDirectory() as tmp:
        fresh = exported_copy(root, Path(tmp))
        out = []
        for f in sorted(fresh.rglob("*.py")):
            rel = f.relative_to(fresh)
            mine = root / LIB / rel
            if not mine.exists():
                out.append(f"{LIB}/{rel} (missing: export it)")
            elif not filecmp.cmp(f, mine, shallow=False):
                out.append(f"{LIB}/{rel} (differs from a fresh export)")
        return out


if __name__ == "__main__":
    diffs = differences(ROOT)
    if diffs:
        print("jukebox_nb/ is out of date with nbs/ — run `nbdev_export` and commit both:")
        print("\n".join("  " + d for d in diffs))
        sys.exit(1)
    print("export check: jukebox_nb/ matches nbs/")
