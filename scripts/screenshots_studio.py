"""Screenshots of the studio after a sample, with the browser tests' driver (JupyterLab + headless Debian Chromium).

    python scripts/screenshots.py studio demo docs/images/studio.jpg      # or `fake` instead of `demo`
    python scripts/screenshots_studio.py [--out docs/images/studio.jpg] [--seconds 3] [--fake]

Starts a throwaway JupyterLab (tests/browser/conftest.py's `start_lab`), opens a copy of nbs/studio.ipynb
with the bundled demo models (or the fake stand-in with --fake), runs it as the browser tests do, samples
`--seconds` through all three levels and writes a small JPEG of the whole studio (about 75 KB, for
the README). `scripts/screenshots.py` (which also takes the demo page) lists it as the `studio` kind.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))  # the browser tests' driver: start_lab, run_studio


def small_jpeg(png: bytes, path: Path, width: int = 800, quality: int = 50) -> Path:
    "A PNG screenshot as a JPEG `width` pixels wide (sharp enough to read, small enough for a README)."
    from PIL import Image
    im = Image.open(io.BytesIO(png)).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.jpg"); im.save(tmp, "JPEG", quality=quality, optimize=True); tmp.replace(path)
    return path


def studio_page(out: str | Path = ROOT / "docs" / "images" / "studio.jpg", # the JPEG to write
                seconds: float = 3.0, # length to sample (all three levels; the middle upsampler's window is 2.97 s)
                fake: bool = False, # the scripted stand-in instead of the bundled demo models
                width: int = 1320, # browser viewport width (CSS pixels)
               ) -> Path:
    "A screenshot of the whole studio after one sample."
    from playwright.sync_api import sync_playwright
    from conftest import CHROMIUM, CHROMIUM_ARGS, start_lab
    from test_studio import WAIT_MS, _wait_text, copy_studio, run_studio
    out = Path(out)
    with tempfile.TemporaryDirectory() as d, start_lab(Path(d)) as lab, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000}); page.errors = []
            copy_studio(lab.root / "studio.ipynb", fake)
            studio = run_studio(lab, page, "studio.ipynb", fake)
            page.locator(".jb-seconds input").fill(f"{seconds:g}"); page.locator(".jb-seconds input").press("Enter")
            page.locator("button.jb-sample").click()
            _wait_text(page, ".jb-status", "finished", WAIT_MS)
            page.set_viewport_size({"width": width, "height": 2400}); studio.scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            errors = [e for e in page.locator(".jb-error").all_inner_texts() if e.strip()]
            if errors: raise SystemExit(f"the studio shows an error: {errors[0][:300]}")
            shot = small_jpeg(studio.screenshot(), out)
        finally: browser.close()
    return shot


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "studio.jpg")); p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fake", action="store_true"); p.add_argument("--width", type=int, default=1320)
    a = p.parse_args(argv)
    path = studio_page(a.out, a.seconds, a.fake, a.width); print(path, f"{path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
