"""The demo page (`jukebox-nb demo`'s index.html) in headless Chromium: every spectrogram is exactly as wide as
its player and starts where it starts, and the playhead and click-to-seek follow the audio."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.browser


def test_demo_page_spectrograms_line_up_with_their_players(page, tmp_path):
    from jukebox_nb.cli import SPEC_SIZE, PageSection, _wav_png, html_page
    sr = 22050; t = np.arange(2 * sr) / sr
    wav, png = _wav_png(tmp_path / "tone", (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 1)).astype(np.float32), sr)
    doc = html_page("demo", [PageSection("A new song", "two seconds", tables=[("Request", [], [("Artist", "Ada Lovelace")])],
                                         tracks=[("Level 2 · a tone", wav, png), ("Level 1 · the same", wav, png)])])
    (tmp_path / "index.html").write_text(doc)
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_function("() => [...document.querySelectorAll('audio')].every(a => a.readyState >= 1)")
    boxes = page.evaluate("""() => [...document.querySelectorAll('figure')].map(f =>
        [f.querySelector('.spec img'), f.querySelector('audio')].map(e => { const r = e.getBoundingClientRect(); return [r.left, r.width]; }))""")
    assert len(boxes) == 2
    for img, audio in boxes:
        assert img == audio  # the same left edge and width: the time axis of the picture is the player's
        assert img[1] == SPEC_SIZE[0]  # the picture at its own size on a wide window: full width, not a thumbnail
    assert page.evaluate("() => document.querySelector('audio').duration") == pytest.approx(2.0, abs=0.01)
    page.evaluate("() => { document.querySelector('audio').currentTime = 1.0; }")
    page.wait_for_function("() => document.querySelector('.playhead').style.left.startsWith('50')")  # 1 s of 2 s: half-way
    r = page.evaluate("() => { const r = document.querySelector('.spec').getBoundingClientRect(); return [r.left, r.top, r.width]; }")
    page.mouse.click(r[0] + 0.75 * r[2], r[1] + 20)  # click at three quarters of the picture: play from 1.5 s
    page.wait_for_function("() => Math.abs(document.querySelector('audio').currentTime - 1.5) < 0.02")
    assert page.errors == []
