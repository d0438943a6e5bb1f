"""Screenshots of what a user sees, taken in headless Debian Chromium through Playwright (the browser tests' driver).

    python scripts/screenshots.py demo out/demo/index.html demo.png [--width 1200] [--height 900]
    python scripts/screenshots.py studio demo docs/images/studio.jpg [--width 1320]   # or `studio fake ...`

Drives /usr/bin/chromium (never `playwright install`; flags as in ../shared/reference/environment.md §2).
Each kind of page is one function taking the page and the PNG to write; add new ones beside `demo_page`.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--mute-audio"]


@contextmanager
def browser_page(width: int = 1200, height: int = 900):
    "A Playwright page in headless Debian Chromium, `width` x `height` CSS pixels."
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: `apt-get install -y --no-install-recommends chromium` (no `playwright install`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try: yield browser.new_page(viewport={"width": width, "height": height})
        finally: browser.close()


def demo_page(html: str | Path, # an index.html written by `jukebox-nb demo`
              png: str | Path, # the screenshot to write
              width: int = 1200, # viewport width (CSS pixels); the page's content is 1,100 px wide
              height: int | None = 900, # keep the top `height` pixels (None: the whole page)
             ) -> Path:
    "Screenshot of the demo page once its players know their durations."
    html, png = Path(html).resolve(), Path(png)
    with browser_page(width, height or 900) as page:
        page.goto(html.as_uri())
        page.wait_for_function("() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=height is None)
    return png


def studio(which: str, # "demo" (the bundled demo models) or "fake" (the scripted stand-in)
           png: str | Path, # the screenshot to write (JPEG, about 75 KB)
           width: int = 1320, height: int | None = None) -> Path:
    "Screenshot of the real studio after a 3 s sample, taken in JupyterLab (see screenshots_studio.py)."
    from screenshots_studio import studio_page
    if which not in ("demo", "fake"): raise SystemExit(f"studio screenshots are of 'demo' or 'fake', not {which!r}")
    return studio_page(png, fake=which == "fake", width=width)


PAGES = {"demo": demo_page, "studio": studio}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=sorted(PAGES)); p.add_argument("page"); p.add_argument("png")
    p.add_argument("--width", type=int, default=1200); p.add_argument("--height", type=int, default=900, help="0: the whole page")
    a = p.parse_args(argv)
    print(PAGES[a.kind](a.page, a.png, a.width, a.height or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
