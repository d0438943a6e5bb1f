"""The studio notebook in a real browser: JupyterLab + headless Chromium, driven like a user would.

Opens a copy of nbs/studio.ipynb, runs all cells, picks an artist, edits the lyrics, clicks Sample and
checks that every level's token progress advances, that players and spectrograms appear, that each
player is at least as long as asked and says its exact length, that no image is ever broken, that a
cancel leaves no counter of an earlier run, and that no error is shown anywhere. A last test runs the
studio the way scripts/studio.sh opens it and checks that the tracked notebook is unchanged after a
run and a save. Leaves screenshots in test-artifacts/.
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


def copy_studio(dest: Path, fake: bool, models: str | None = None):
    """nbs/studio.ipynb as `dest`; `fake` puts a first cell that chooses the scripted stand-in (JUKEBOX_NB_STUDIO=fake),
    `models` one that names a bundled model set (JUKEBOX_NB_MODELS), as a user does before starting JupyterLab."""
    nb = json.loads((ROOT / "nbs" / "studio.ipynb").read_text())
    env = {"JUKEBOX_NB_STUDIO": "fake"} if fake else {"JUKEBOX_NB_MODELS": models} if models else {}
    if env:
        cell = {"cell_type": "code", "execution_count": None, "id": "choose-models", "metadata": {}, "outputs": [],
                "source": [f"import os; os.environ.update({env!r})"]}
        nb["cells"].insert(1, cell)
    dest.write_text(json.dumps(nb))


# JS: images in the studio that are shown (laid out) but have no pixels: the browser's broken-image icon.
BROKEN_IMAGES = """() => [...document.querySelectorAll('.jb-studio img')]
  .filter(i => i.getClientRects().length > 0 && !(i.complete && i.naturalWidth > 0))
  .map(i => i.className || i.src.slice(0, 40))"""


def assert_no_broken_images(page, when: str):
    page.wait_for_timeout(300)  # let the last image updates land
    broken = page.evaluate(BROKEN_IMAGES)
    assert broken == [], f"{when}: images shown without pixels (broken-image icons): {broken}"


def open_studio(lab, page, name: str, fake: bool, models: str | None = None):
    "Open a fresh copy of nbs/studio.ipynb as `name`, run all its cells and return the studio's locator."
    copy_studio(lab.root / name, fake, models)  # a new file: a new kernel
    return run_studio(lab, page, name, fake)


def run_studio(lab, page, name: str, fake: bool):
    "Open the notebook `name` of the server, run all its cells and return the studio's locator."
    page.goto(lab.url(name, workspace=name.replace(".", "-").replace("/", "-")))
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
    assert_no_broken_images(page, "first load")
    cut = page.eval_on_selector_all(".jb-artist select, .jb-genres select",
                                    "ss => ss.filter(s => s.scrollHeight > s.clientHeight + 1 || s.scrollTop > 0).map(s => s.closest('.jb-artist, .jb-genres').className)")
    assert cut == [], f"lists that scroll on first load (their top row shows cut in half): {cut}"
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


def sample_and_check(page, want_status: tuple[str, ...], alignment: bool, seconds: float, partway: tuple[int, ...] = LEVELS):
    """Click Sample, record every level's counter, and check progress, players, spectrograms and token maps. `partway`:
    the levels whose counter must be seen part-way (a level done in less than the widget's 0.25 s update interval,
    such as the demo models' 130-code top level, shows only its start and end)."""
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
        if level in partway: assert any(0 < d < t for d, t in counts), f"level {level}: progress never shown part-way: {counts}"
        assert [d for d, _ in counts] == sorted(d for d, _ in counts), f"level {level} went backwards: {counts}"
        box = page.locator(f".jb-audio-{level}")
        audio = box.locator("audio")
        assert audio.count() == 1, f"level {level}: {audio.count()} audio players"
        assert audio.first.evaluate("a => a.src.startsWith('blob:') && a.controls && !a.autoplay")
        audio.first.evaluate("a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))")
        duration = audio.first.evaluate("a => a.duration")
        assert duration >= seconds, f"level {level}: a {duration:.3f} s player for {seconds:g} s asked (shows {int(duration)} s)"
        shown = box.locator(".jb-duration").first.inner_text()
        assert f"{duration:.3f} s" in shown, f"level {level}: the player is {duration:.3f} s long, the page says {shown!r}"
        for img in (box.locator("img.jb-spec").first, page.locator(f"img.jb-tokens-{level}")):
            assert img.evaluate("i => i.complete && i.naturalWidth > 100"), f"level {level}: image not shown"
    if alignment: assert page.locator("img.jb-alignment").evaluate("i => i.complete && i.naturalWidth > 100")
    assert_no_errors(page)
    assert_no_broken_images(page, "after a sample")


def cancel_and_check(page, seconds: float = 60.0):
    "Sample again (longer), cancel during level 1: level 0 says 'not sampled', not the counts of the earlier run."
    page.locator(".jb-seconds input").fill(f"{seconds:g}"); page.locator(".jb-seconds input").press("Enter")
    page.locator("button.jb-sample").click()
    _wait_text(page, ".jb-count-1", r"window \d+/\d+", WAIT_MS)  # level 1 of the new run is being sampled
    page.locator("button.jb-cancel").click()
    _wait_text(page, ".jb-status", "cancelled", WAIT_MS)
    labels = {l: page.locator(f".jb-count-{l}").inner_text() for l in LEVELS}
    assert "cancelled" in labels[1], labels
    assert "not sampled" in labels[0] and not re.search(r"done|tokens/s|\d / \d", labels[0]), labels
    assert page.locator(".jb-audio-0 audio").count() == 0, "the earlier run's level-0 player is still shown"
    assert_no_errors(page)
    assert_no_broken_images(page, "after a cancel")


def test_studio_samples_the_bundled_demo_models(lab, page):
    "The notebook as shipped: our trained demo models, sampled on the CPU through all three levels."
    from jukebox_nb.checkpoints import demo_defaults
    studio = open_studio(lab, page, "studio-demo.ipynb", fake=False)
    default = demo_defaults()["artist"]
    assert page.locator(".jb-artist select").evaluate("s => s.value") == default  # the notebook's suggested artist
    page.locator(".jb-artist-search input").fill("monte")
    _wait_text(page, ".jb-artist select", r"^Claudio\sMonteverdi$")  # filtered by the kernel: only what matches
    assert default in page.locator(".jb-artist-picked").inner_text()  # the pick is kept aside
    _select(page, ".jb-artist select", "Claudio Monteverdi")
    _select(page, ".jb-genres select", "madrigal")
    assert page.locator(".jb-lyrics textarea").is_disabled()  # an instrumental model
    _wait_text(page, ".jb-lyrics-count", "no lyrics for this model")
    sample_and_check(page, ("Claudio Monteverdi", "madrigal", "3 s"), alignment=False, seconds=3.0, partway=(0,))
    screenshot(page, studio, "studio.png")


def test_studio_sings_with_the_bundled_lyrics_set(lab, page):
    "JUKEBOX_NB_MODELS=lyrics: the lyrics set opens with its singer and words, the editor is live, and a sample shows its alignment."
    from jukebox_nb.checkpoints import demo_defaults, find_demo_models
    d = demo_defaults(find_demo_models("lyrics"))
    open_studio(lab, page, "studio-lyrics.ipynb", fake=False, models="lyrics")
    assert page.locator(".jb-artist select").evaluate("s => s.value") == d["artist"]
    box = page.locator(".jb-lyrics textarea")
    assert not box.is_disabled() and box.input_value() == d["lyrics"]  # the set's own words, ready to sing
    _wait_text(page, ".jb-lyrics-count", r"\d+ / 256")
    box.fill("Sing of the river and the stones")
    _wait_text(page, ".jb-lyrics-count", r"\b32 / 256\b")
    sample_and_check(page, (d["artist"], "3 s"), alignment=True, seconds=3.0, partway=(0,))


def test_studio_samples_in_the_browser(lab, page):
    studio = open_studio(lab, page, "studio-fake.ipynb", fake=True)

    # pick an artist through the search box and the list
    page.locator(".jb-artist-search input").fill("fix")
    _wait_text(page, ".jb-artist select", r"^Fiona\sFixture$")  # the kernel filtered the list
    _select(page, ".jb-artist select", "Fiona Fixture")
    _select(page, ".jb-genres select", "jazz")

    # edit the lyrics: the kernel answers with a count and out-of-vocabulary marks
    page.locator(".jb-lyrics textarea").fill("Café du monde ♪\nla la la")
    _wait_text(page, ".jb-lyrics-count", r"\b23 / 64\b")
    oov = _wait_text(page, ".jb-lyrics-oov", "→∅")  # the marks arrive just after the count
    assert "→e" in oov and "→∅" in oov, oov

    # sample and watch
    sample_and_check(page, ("Fiona Fixture", "jazz", "10 s"), alignment=True, seconds=10.0)
    screenshot(page, studio, "studio-fake.png")
    cancel_and_check(page)

    # the finished run is kept in the History tab (the cancelled one is not)
    page.get_by_role("tab", name="History (1)").click()
    history = page.locator(".jb-history")
    assert "Fiona Fixture · jazz · 10 s · seed 0" in history.inner_text()
    assert history.locator("audio").count() == 3 and history.locator("button.jb-save").count() == 1
    assert_no_broken_images(page, "history tab")


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
    for level in LEVELS:  # the co-composer's progress: tokens per level, as on the Sample tab
        _wait_text(page, f".jb-cc-count-{level}", r"([\d,]+) / \1 tokens · done")
    page.locator("button.jb-pick").nth(1).click()  # pick candidate #2
    _wait_text(page, "button.jb-generate", "Continue from #2")
    page.locator("button.jb-generate").click()
    _wait_text(page, ".jb-tree", r"#6", WAIT_MS)
    tree = page.locator(".jb-tree").inner_text()
    assert re.search(r"★ #2 \(4 s\)", tree) and all(f"#{i} (8 s)" in tree for i in (4, 5, 6)), tree
    assert_no_errors(page)
    screenshot(page, studio, "studio-co-compose.png")


def test_running_the_studio_leaves_the_tracked_notebook_unchanged(repo_lab, page):
    "Run every cell, sample, save: the file on disk is byte for byte the tracked notebook, and no cell but the studio shows a value."
    path = repo_lab.root / "nbs" / "studio.ipynb"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    run_studio(repo_lab, page, "nbs/studio.ipynb", fake=True)
    shown = page.evaluate("""() => {
      const nb = window.jupyterapp.shell.currentWidget.content.model, out = [];
      for (let i = 0; i < nb.cells.length; i++) {
        const c = nb.cells.get(i);
        if (c.type === 'code' && c.outputs.toJSON().some(o => o.output_type === 'execute_result')) out.push(i);
      }
      return out; }""")
    assert shown == [len(json.loads(before)["cells"]) - 1], f"cells showing a value: {shown} (only the studio, the last cell, should)"
    page.locator(".jb-seconds input").fill("1"); page.locator(".jb-seconds input").press("Enter")
    page.locator("button.jb-sample").click()
    _wait_text(page, ".jb-status", "finished|error|cancelled", WAIT_MS)
    assert_no_errors(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    assert path.stat().st_mtime_ns != mtime, "the notebook was not saved"
    after = path.read_bytes()
    if after != before:
        ARTIFACTS.mkdir(exist_ok=True); (ARTIFACTS / "studio-saved.ipynb").write_bytes(after)
    assert after == before, "saving the run studio changed the tracked notebook (see test-artifacts/studio-saved.ipynb)"
