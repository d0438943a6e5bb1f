"""The studio notebook in a real browser: JupyterLab + headless Chromium, driven like a user would.

Opens a copy of nbs/studio.ipynb, runs all cells, picks an artist, edits the lyrics, clicks Sample and
checks that every level's token progress advances, that players and spectrograms appear and that no
error is shown anywhere. Leaves a screenshot in test-artifacts/studio.png.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser

LEVELS = (2, 1, 0)
WAIT_MS = 180_000  # first runs compile numba caches for librosa and start a kernel on 2 shared cores

# JS run in the page: record the text of every level's counter every 40 ms (progress history).
RECORD_COUNTS = """() => {
  window.__jbSeen = {0: [], 1: [], 2: []};
  window.__jbTimer = setInterval(() => {
    for (const l of [0, 1, 2]) {
      const el = document.querySelector('.jb-count-' + l);
      const seen = window.__jbSeen[l];
      if (el && (seen.length === 0 || seen[seen.length - 1] !== el.innerText)) seen.push(el.innerText);
    }
  }, 40);
}"""

# JS: error outputs of any cell in the open notebook (output_type 'error' in the notebook model).
CELL_ERRORS = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content.model;
  const errs = [];
  for (let i = 0; i < nb.cells.length; i++) {
    const c = nb.cells.get(i);
    if (c.type !== 'code') continue;
    for (const o of c.outputs.toJSON()) if (o.output_type === 'error') errs.push(o.ename + ': ' + o.evalue);
  }
  return errs;
}"""

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""


def _counts(texts: list[str]) -> list[tuple[int, int]]:
    "Parse 'level 2 (top): 16 / 625 tokens ...' into (done, total) pairs."
    out = []
    for t in texts:
        m = re.search(r"([\d,]+) / ([\d,]+) tokens", t)
        if m: out.append((int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))))
    return out


def _wait_text(page, selector: str, pattern: str, timeout: int = 30_000) -> str:
    "Wait until the element's text matches the regex `pattern`; fail showing the text it had."
    js = "([s, p]) => new RegExp(p).test(document.querySelector(s)?.innerText || '')"
    try: page.wait_for_function(js, arg=[selector, pattern], timeout=timeout)
    except Exception:
        el = page.query_selector(selector)
        ARTIFACTS.mkdir(exist_ok=True); page.screenshot(path=str(ARTIFACTS / "studio-failure.png"))
        pytest.fail(f"{selector} never matched {pattern!r}; its text: {el.inner_text() if el else '(missing)'!r}; "
                    f"page errors: {page.errors}")
    return page.query_selector(selector).inner_text()


def _select(page, selector: str, label: str):
    "Choose the option shown as `label` (ipywidgets renders spaces as no-break spaces)."
    labels = page.eval_on_selector_all(f"{selector} option", "os => os.map(o => o.textContent.replace(/\\u00a0/g, ' '))")
    assert label in labels, f"{label!r} not offered in {selector}: {labels}"
    page.locator(selector).first.select_option(index=labels.index(label))


def copy_studio(dest: Path, fake: bool):
    "nbs/studio.ipynb as `dest`; `fake` puts a first cell that chooses the scripted stand-in (JUKEBOX_NB_STUDIO=fake)."
    nb = json.loads((ROOT / "nbs" / "studio.ipynb").read_text())
    if fake:
        cell = {"cell_type": "code", "execution_count": None, "id": "choose-fake", "metadata": {}, "outputs": [],
                "source": ["import os; os.environ['JUKEBOX_NB_STUDIO'] = 'fake'"]}
        nb["cells"].insert(1, cell)
    dest.write_text(json.dumps(nb))


def open_studio(lab, page, name: str, fake: bool):
    "Open a fresh copy of nbs/studio.ipynb as `name`, run all its cells and return the studio's locator."
    copy_studio(lab.root / name, fake)  # a new file: a new kernel
    page.goto(lab.url(name, workspace=name.replace(".", "-")))
    page.wait_for_function("() => !!window.jupyterapp", timeout=WAIT_MS)
    page.wait_for_function(KERNEL_IDLE, timeout=WAIT_MS)
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == name  # run-all runs this one
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    studio = page.locator(".jb-studio")
    appeared = f"() => !!document.querySelector('.jb-studio') || ({CELL_ERRORS})().length > 0"
    try: page.wait_for_function(appeared, timeout=WAIT_MS); studio.wait_for(state="visible", timeout=10_000)
    except Exception:
        pytest.fail(f"the studio widget never appeared; cell errors: {page.evaluate(CELL_ERRORS)}; "
                    f"page errors: {page.errors}\nserver log:\n{lab.log_tail()}")
    banner = page.locator(".jb-fake-banner")
    if fake: assert "Fake model" in banner.inner_text()  # the notebook says it is fake
    else: assert banner.count() == 0, "the bundled demo models are real: no fake-model banner"
    # make room for the screenshot: no side panel, no code
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); "
                  "return window.jupyterapp.commands.execute('notebook:hide-all-cell-code'); }")
    return studio


def assert_no_errors(page):
    "No error box shows text, no cell has an error output, no uncaught page error."
    shown = [t for t in page.locator(".jb-error").all_inner_texts() if t.strip()]
    assert shown == [], shown
    assert page.evaluate(CELL_ERRORS) == []
    assert page.errors == [], page.errors


def screenshot(page, studio, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1500, "height": 2200})
    studio.scroll_into_view_if_needed(); page.wait_for_timeout(500)
    studio.screenshot(path=str(ARTIFACTS / name))


def sample_and_check(page, want_status: tuple[str, ...], alignment: bool):
    "Click Sample, record every level's counter, and check progress, players, spectrograms and token maps."
    page.evaluate(RECORD_COUNTS)
    page.locator("button.jb-sample").click()
    _wait_text(page, ".jb-status", "finished|error|cancelled", WAIT_MS)
    page.wait_for_timeout(300)  # let the last counter texts land
    seen = page.evaluate("() => { clearInterval(window.__jbTimer); return window.__jbSeen; }")
    status = page.locator(".jb-status").inner_text()
    assert_no_errors(page)
    assert "finished" in status and all(w in status for w in want_status), status
    for level in LEVELS:
        counts = _counts(seen[str(level)])
        assert counts, f"level {level}: no progress shown ({seen[str(level)]})"
        done, total = counts[-1]
        assert total > 0 and done == total, f"level {level} ended at {done} / {total}"
        assert any(0 < d < t for d, t in counts), f"level {level}: progress never shown part-way: {counts}"
        assert [d for d, _ in counts] == sorted(d for d, _ in counts), f"level {level} went backwards: {counts}"
        box = page.locator(f".jb-audio-{level}")
        audio = box.locator("audio")
        assert audio.count() == 1, f"level {level}: {audio.count()} audio players"
        assert audio.first.evaluate("a => a.src.startsWith('blob:') && a.controls && !a.autoplay")
        audio.first.evaluate("a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))")
        assert audio.first.evaluate("a => a.duration") > 1.0
        for img in (box.locator("img.jb-spec").first, page.locator(f"img.jb-tokens-{level}")):
            assert img.evaluate("i => i.complete && i.naturalWidth > 100"), f"level {level}: image not shown"
    if alignment: assert page.locator("img.jb-alignment").evaluate("i => i.complete && i.naturalWidth > 100")
    assert_no_errors(page)


def test_studio_samples_the_bundled_demo_models(lab, page):
    "The notebook as shipped: our trained demo models, sampled on the CPU through all three levels."
    from jukebox_nb.checkpoints import demo_defaults
    studio = open_studio(lab, page, "studio-demo.ipynb", fake=False)
    default = demo_defaults()["artist"]
    assert page.locator(".jb-artist select").evaluate("s => s.value") == default  # the notebook's suggested artist
    page.locator(".jb-artist-search input").fill("aubry")
    _wait_text(page, ".jb-artist select", r"^Mattias\sWestlund\s+Aleksi\sAubry-Carlson$")  # filtered by the kernel; the pick stays listed
    _select(page, ".jb-artist select", "Aleksi Aubry-Carlson")
    _select(page, ".jb-genres select", "orchestral")
    assert page.locator(".jb-lyrics textarea").is_disabled()  # an instrumental model
    _wait_text(page, ".jb-lyrics-count", "no lyrics for this model")
    sample_and_check(page, ("Aleksi Aubry-Carlson", "orchestral", "3 s"), alignment=False)
    screenshot(page, studio, "studio.png")


def test_studio_samples_in_the_browser(lab, page):
    studio = open_studio(lab, page, "studio-fake.ipynb", fake=True)

    # pick an artist through the search box and the list
    page.locator(".jb-artist-search input").fill("fix")
    _wait_text(page, ".jb-artist select", r"^unknown\s+Fiona\sFixture$")  # the kernel filtered the list
    _select(page, ".jb-artist select", "Fiona Fixture")
    _select(page, ".jb-genres select", "jazz")

    # edit the lyrics: the kernel answers with a count and out-of-vocabulary marks
    page.locator(".jb-lyrics textarea").fill("Café du monde ♪\nla la la")
    _wait_text(page, ".jb-lyrics-count", r"\b23 / 64\b")
    oov = page.locator(".jb-lyrics-oov").inner_text()
    assert "→e" in oov and "→∅" in oov, oov

    # sample and watch
    sample_and_check(page, ("Fiona Fixture", "jazz"), alignment=True)
    screenshot(page, studio, "studio-fake.png")


def test_studio_reconstruct_and_co_compose_tabs(lab, page):
    studio = open_studio(lab, page, "studio-tabs.ipynb", fake=True)
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("button.jb-reconstruct").click()  # the bundled clip
    _wait_text(page, ".jb-recon-status", r"clip\.flac: [\d.]+ s at \d+ Hz", WAIT_MS)
    titles = page.locator(".jb-recon-sc").all_inner_texts()
    assert [t.split(" ·")[0] for t in titles] == ["original", "level 0", "level 1", "level 2"], titles
    assert all(re.search(r"spectral convergence -?[\d.]+ dB", t) for t in titles[1:]), titles
    assert page.locator(".jb-recon audio").count() == 4
    assert page.locator(".jb-recon img").evaluate_all("ims => ims.every(i => i.complete && i.naturalWidth > 100)")
    screenshot(page, studio, "studio-reconstruct.png")

    page.get_by_role("tab", name="Co-compose").click()
    page.locator("button.jb-generate").click()
    page.wait_for_function("() => document.querySelectorAll('button.jb-pick').length === 3", timeout=WAIT_MS)
    page.locator("button.jb-pick").nth(1).click()  # pick candidate #2
    _wait_text(page, "button.jb-generate", "Continue from #2")
    page.locator("button.jb-generate").click()
    _wait_text(page, ".jb-tree", r"#6", WAIT_MS)
    tree = page.locator(".jb-tree").inner_text()
    assert re.search(r"★ #2 \(4 s\)", tree) and all(f"#{i} (8 s)" in tree for i in (4, 5, 6)), tree
    assert_no_errors(page)
    screenshot(page, studio, "studio-co-compose.png")
