"""Tests need the system tools that `bash scripts/test.sh` installs (scripts/system_packages.sh): a missing one fails
with what to do, never skips (a plain module, imported by the test files that need it; see oracle_codes.py)."""
import importlib.util
import shutil
from pathlib import Path

import pytest


def require(ok: bool, what: str) -> None:
    "Fail (never skip) the test when `what` is missing."
    if not ok: pytest.fail(f"{what} is missing: run `bash scripts/test.sh` as root (it installs the system packages), "
                           f"or see scripts/system_packages.sh", pytrace=False)


def require_music21():
    "music21 (a dev requirement: scripts/setup.sh installs it)."
    require(importlib.util.find_spec("music21") is not None, "music21 (`pip install -e '.[dev]'`)")
    import music21
    return music21


def require_fluidsynth(soundfonts) -> None:
    "fluidsynth and one of `soundfonts` ((path, ...) rows, as `corpus.SOUNDFONTS`)."
    require(shutil.which("fluidsynth") is not None, "fluidsynth")
    require(any(Path(f).is_file() for f, *_ in soundfonts), "a General MIDI soundfont (timgm6mb-soundfont)")
