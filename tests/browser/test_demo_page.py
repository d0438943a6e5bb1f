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


def test_demo_page_karaoke_lights_the_word_being_sung(page, tmp_path):
    from jukebox_nb.cli import PageSection, _wav_png, html_page
    from jukebox_nb.studio import WordTime
    sr = 22050; t = np.arange(2 * sr) / sr
    wav, png = _wav_png(tmp_path / "tone", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    words = [WordTime("oh", 0.0, 0.5, 0.0, 0.7), WordTime("my", 0.5, 1.2, 0.7, 1.0), WordTime("darling", 1.2, 2.0, 1.0, 2.0),
             WordTime("Clementine", None, None, None, None)]
    (tmp_path / "index.html").write_text(html_page("demo", [PageSection("A new song", tracks=[("Level 2 · top", wav, png, words)])]))
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    lit = "() => [...document.querySelectorAll('.karaoke p')].map(p => [...p.querySelectorAll('.w.on')].map(w => w.textContent).join())"
    page.evaluate("() => { document.querySelector('audio').currentTime = 0.8; }")
    page.wait_for_function(f"() => ({lit})()[0] === 'my'")
    assert page.evaluate(lit) == ["my", "my"]  # the alignment's word and, beside it, the true one
    page.evaluate("() => { document.querySelector('audio').currentTime = 1.1; }")
    page.wait_for_function(f"() => ({lit})()[1] === 'darling'")
    assert page.evaluate(lit) == ["my", "darling"]  # they disagree here: the true timing has moved on
    page.click(".karaoke .model .w:text('darling')")  # a word plays from its start
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 1.2")
    assert page.evaluate("() => document.querySelector('.karaoke .w.off').textContent") == "Clementine"  # not reached: never lit
    assert page.errors == []


def test_studio_karaoke_script_lights_words_when_set_as_ipywidgets_does(page, tmp_path):
    "ipywidgets' HTML view sets `innerHTML` (no <script> runs); the line's own handler installs the listener, the player is an <audio> with the view's class."
    import base64, json
    from jukebox_nb.sampling import FakeSampler
    from jukebox_nb.widgets import Studio, fake_model_info
    st = Studio(fake_model_info(), FakeSampler(), files=[], min_interval=0.0, threaded=False)
    st.controls.fields["seconds"].value = 2.0
    st.lyrics.text.value = "Oh my darling, Clementine"
    st.controls.sample_button.click()
    player = st.players.players[2][0]
    (tmp_path / "studio.html").write_text(
        f"<!doctype html><body><audio controls class='{' '.join(player._dom_classes)}' "
        f"src='data:audio/wav;base64,{base64.b64encode(player.value).decode()}'></audio><div id=k></div>"
        f"<script>document.getElementById('k').innerHTML = {json.dumps(st.karaoke.line.value)};</script></body>")
    page.goto((tmp_path / "studio.html").as_uri())
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    for w in st.karaoke.words:
        mid = (w.start + w.end) / 2
        page.evaluate(f"() => {{ document.querySelector('audio').currentTime = {mid}; }}")
        page.wait_for_function(f"() => [...document.querySelectorAll('.w.on')].map(w => w.textContent).join() === {json.dumps(w.word)}")
    assert page.errors == []
