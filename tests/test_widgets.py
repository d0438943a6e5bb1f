"""Widgets driven by scripted events: events in, widget state out (no browser; see tests/browser for that).

Sampling runs on the widgets' worker thread as it does in a notebook; tests `join()` it (or gate a
scripted sampler with `threading.Event`s) so every assertion sees a settled state.
"""
from __future__ import annotations

import datetime
import re
import io
import threading
from dataclasses import fields

import ipywidgets as W
import numpy as np
import pytest
import soundfile as sf
import torch

from jukebox_nb.audio import example_clip
from jukebox_nb.sampling import (Decoded, FakeSampler, Finished, LevelFinished, LevelStarted, SampleRequest, SampleResult,
                                 TokensSampled, WindowSampled)
from jukebox_nb.studio import ModelInfo, model_info
from jukebox_nb.widgets import (REQUEST_SET_ELSEWHERE, REQUEST_WIDGETS, AlignmentView, ArtistGenrePicker, ChoiceTree,
                                CoComposer, LevelAudioView, LevelStream, LyricsEditor, ReconstructionExplorer, SampleRunner,
                                SamplingControls, Studio, TokenStreamView, analyse_lyrics, fake_model_info, filter_names,
                                token_map)


class Clock:
    "A clock that advances `step` seconds each time it is read."
    def __init__(self, step: float): self.t, self.step = 0.0, step
    def __call__(self) -> float: self.t += self.step; return self.t


def toks(n: int, B: int = 1) -> torch.Tensor: return torch.arange(n).repeat(B, 1) % 64  # [B, n]


def scripted_level(level: int = 2, total: int = 40, n_ctx: int = 16) -> list:
    "Hand-written events for one level: two windows reported in chunks of 8 tokens."
    evs = [LevelStarted(level, 3, total)]
    for w, (s, e) in enumerate([(0, 16), (16, 32), (32, 40)]):
        for d in range(s + 8, e + 1, 8): evs.append(TokensSampled(level, w, d, total, toks(d)))
        evs.append(WindowSampled(level, w, s, e, toks(e)))
    return evs + [LevelFinished(level, toks(total))]


@pytest.fixture
def info(): return fake_model_info()


# --- model info -----------------------------------------------------------------------------------

def test_model_info_checks_tables_and_names(info):
    with pytest.raises(ValueError, match="genres ids must be ints >= 0"): ModelInfo("m", {"a": 0}, {"g": -1})
    with pytest.raises(ValueError, match="hops must give 3"): ModelInfo("m", {"a": 0}, {"g": 0}, hops=(8, 32))
    with pytest.raises(ValueError, match="unknown genre"): info.metadata("unknown", ["polka"])
    m = info.metadata("Echo Dummy", ["rock"], "words", seconds=3)
    assert (m.artist, m.genres, m.lyrics, m.total_length) == (5, (8,), "words", 12000)
    no_lyrics = ModelInfo("m", {"a": 0}, {"g": 0}, n_tokens=0)
    assert no_lyrics.metadata("a", lyrics="ignored").lyrics == ""


# --- picker, lyrics, controls ---------------------------------------------------------------------

def test_filter_names_keeps_selection_and_limits():
    names = [f"artist {i}" for i in range(500)]
    assert filter_names(names, "ARTIST 49", keep=["artist 7"]) == ["artist 7", "artist 49"] + [f"artist {i}" for i in range(490, 500)]
    assert len(filter_names(names, "", limit=200)) == 200


def test_picker_search_pick_and_genre_cap(info):
    p = ArtistGenrePicker(info)
    p.artist_search.value = "dummy"
    assert p.artist.options == ("Echo Dummy",)  # only matches; the pick (unknown) stays picked, shown beside the list
    p.artist.value = "Echo Dummy"
    p.artist_search.value = ""
    assert p.artist_name == "Echo Dummy" and len(p.artist.options) == len(info.artists)
    p.genres.value = ("rock", "pop", "jazz", "folk")
    assert p.genre_names_picked == ("rock", "pop", "jazz") and "at most 3" in p.note.value
    p.genre_search.value = "el"  # 'electronic' matches; the picked genres stay listed and picked
    assert p.genres.options[:3] == ("rock", "pop", "jazz") and "electronic" in p.genres.options
    assert p.genre_ids == tuple(info.genres[g] for g in ("rock", "pop", "jazz"))


def test_picker_single_genre_model_uses_a_single_choice_list():
    one = fake_model_info(max_genres=1)
    p = ArtistGenrePicker(one)
    assert isinstance(p.genres, W.Select) and not isinstance(p.genres, W.SelectMultiple)
    with pytest.raises(ValueError, match="at most 1"): p.pick(genres=["blues", "folk"])
    p.pick("Gus Sine", ["blues"])
    assert (p.artist_id, p.genre_ids) == (one.artists["Gus Sine"], (one.genres["blues"],))


def test_lyrics_editor_counts_marks_and_previews():
    le = LyricsEditor(fake_model_info(n_tokens=10))
    le.text.value = "Naïve\tmode ☃"
    rep = le.report
    assert rep.cleaned == "Naive\tmode " and [c for _, c, _ in rep.changes] == ["ï", "☃"]
    assert "11 / 10" in le.count.value and "longer than the 10-character window" in le.count.value
    assert "2 character(s) outside" in le.marked.value and "→i" in le.marked.value and "→∅" in le.marked.value
    assert " ".join(map(str, rep.ids[:5])) in le.preview.value
    le.text.value = "ok"
    assert "2 / 10" in le.count.value and le.marked.value == ""


def test_lyrics_editor_for_a_model_without_lyrics():
    le = LyricsEditor(fake_model_info(n_tokens=0))
    assert le.text.disabled and "not conditioned on lyrics" in le.text.placeholder


def test_analyse_lyrics_v3_drops_plus():
    from jukebox_nb.conditioning import LyricTokenizer
    assert analyse_lyrics("a+b", LyricTokenizer(v3=True)).changes == [(1, "+", "")]


def test_controls_cover_every_request_field(info):
    names = {f.name for f in fields(SampleRequest)}
    assert names - set(REQUEST_WIDGETS) - set(REQUEST_SET_ELSEWHERE) == set(), "a SampleRequest field has no widget"
    assert set(REQUEST_WIDGETS) <= names
    c = SamplingControls(info)
    assert c.values() == {k: getattr(SampleRequest(), k) for k in REQUEST_WIDGETS}  # defaults round-trip
    c.fields["hop_fraction"][1].value = 0.25; c.fields["top_k"].value = 5; c.fields["seed"].value = 7
    r = c.request()
    assert (r.hop_fraction[1], r.top_k, r.seed, r.metadata) == (0.25, 5, 7, None)
    c.fields["top_p"].value = 0.01; c.fields["temperature"][0].value = 0.05
    assert c.request().temperature[0] == 0.05


# --- runner -----------------------------------------------------------------------------------------

class GatedSampler:
    "Yields one event per `gate.set()`; records when the generator is closed (how cancelling reaches it)."
    def __init__(self, n: int = 5):
        self.n, self.gate, self.sent, self.closed, self.yielded = n, threading.Event(), threading.Event(), False, 0

    def __call__(self, request, config):
        try:
            yield LevelStarted(2, 1, self.n)
            for i in range(1, self.n + 1):
                self.gate.wait(5); self.gate.clear()
                self.yielded += 1
                yield TokensSampled(2, 0, i, self.n, toks(i))
                self.sent.set()
        except GeneratorExit:
            self.closed = True
            raise


def test_cancel_closes_the_generator_and_stops_events():
    s, got = GatedSampler(), []
    r = SampleRunner(s, on_event=got.append)
    r.start(SampleRequest(levels=(2,)))
    s.gate.set(); assert s.sent.wait(5)  # one token event went through
    assert r.running
    r.cancel(); s.gate.set()  # the next event arrives after the cancel: it is dropped
    r.join(5)
    assert (r.status, s.closed) == ("cancelled", True)
    assert [type(e).__name__ for e in got] == ["LevelStarted", "TokensSampled"]
    assert s.yielded == 2 and not r.running


def test_runner_reports_errors_from_sampler_and_views():
    errs = []
    r = SampleRunner(FakeSampler(fail_at_level=2), on_error=lambda e, tb: errs.append((e, tb)))
    r.start(SampleRequest(seconds=0.5)); r.join(5)
    assert r.status == "error" and "scripted failure at level 2" in str(errs[0][0]) and "Traceback" in errs[0][1]
    def bad_view(ev): raise KeyError("view bug")
    r = SampleRunner(FakeSampler(), on_event=bad_view, on_error=lambda e, tb: errs.append((e, tb)))
    r.start(SampleRequest(seconds=0.5)); r.join(5)
    assert r.status == "error" and isinstance(r.error, KeyError)


def test_runner_refuses_a_second_start_while_running():
    s = GatedSampler(n=1)
    r = SampleRunner(s)
    r.start(SampleRequest(levels=(2,)))
    with pytest.raises(RuntimeError, match="already running"): r.start(SampleRequest(levels=(2,)))
    s.gate.set(); r.join(5)
    assert r.status == "finished"


# --- token streams, players, alignment ------------------------------------------------------------

def test_level_stream_follows_scripted_events():
    s = LevelStream(2, bins=64, min_interval=0.0, clock=Clock(0.5))
    evs = scripted_level()
    s.handle(evs[0])
    assert (s.total, s.n_windows, s.done, s.progress.max) == (40, 3, 0, 40)
    s.handle(evs[1])  # 8 tokens
    assert (s.done, s.progress.value) == (8, 8) and "8 / 40" in s.label.value and "window 0/3" in s.label.value
    for e in evs[2:4]: s.handle(e)  # 16 tokens, end of window 0
    assert (s.done, s.windows) == (16, 1) and s.rate == pytest.approx(8 / 1.0)  # 8 tokens since the first report, 2 events later
    for e in evs[4:]: s.handle(e)
    assert s.finished and (s.done, s.progress.value, s.progress.bar_style) == (40, 40, "success")
    assert "40 / 40" in s.label.value and "done" in s.label.value and "tokens/s" in s.label.value
    assert s.image.value[:4] == b"\x89PNG"


def test_token_map_fills_in_and_throttle_limits_redraws():
    frozen = LevelStream(1, bins=64, min_interval=0.25, clock=Clock(0.0))
    for e in scripted_level(level=1): frozen.handle(e)
    assert frozen.renders == 2  # only the forced redraws: level start and level end
    half = token_map(toks(20), total=40, bins=64, width=10)
    full = token_map(toks(40), total=40, bins=64, width=10)
    assert (half[2:] == 30).all() and not (full == 30).all(axis=-1).any()  # dark cells = not sampled yet


def test_token_stream_view_routes_by_level(info):
    v = TokenStreamView(info, min_interval=0.0)
    for e in FakeSampler()(SampleRequest(seconds=1.0, levels=(2, 1))): v.handle(e)
    assert {l: (s.done, s.finished) for l, s in v.levels.items()} == {2: (31, True), 1: (125, True), 0: (0, False)}
    v.reset()
    assert all(s.done == 0 and s.image.value == b"" for s in v.levels.values())


def test_level_audio_view_one_row_per_batch_item(info):
    v = LevelAudioView(info)
    audio = np.sin(np.linspace(0, 300, 3 * 4000)).reshape(3, 4000).astype(np.float32)
    v.handle(Decoded(1, audio, 4000))
    assert len(v.players[1]) == 3 and len(v.boxes[1].children) == 3
    assert all(p.autoplay is False and p.value[:4] == b"RIFF" for p in v.players[1])
    assert all(s.value[:4] == b"\x89PNG" for s in v.specs[1])
    v.handle(LevelStarted(0, 1, 10))  # not a Decoded event: ignored
    assert v.boxes[0].children == ()


def test_alignment_view_messages_and_errors(info):
    res = SampleResult(request=SampleRequest(metadata=(info.metadata("unknown", lyrics="sing", seconds=1.0),), seconds=1.0),
                       tokens={2: toks(31)}, sample_rate=4000)
    v = AlignmentView(info); v.handle(Finished(res))
    assert v.image.value[:4] == b"\x89PNG" and "4 characters" in v.message.value and v.image.layout.display is None
    v.reset(); assert v.image.layout.display == "none"  # no empty (broken) image between runs
    broken = ModelInfo("m", {"a": 0}, {"g": 0}, n_tokens=8, alignment=lambda r, i: (np.zeros((2, 3)), "abc"))
    v = AlignmentView(broken); v.handle(Finished(res))
    assert "n_chars=3" in v.errors.text
    v = AlignmentView(ModelInfo("plain", {"a": 0}, {"g": 0})); v.handle(Finished(res))
    assert "has no lyrics alignment" in v.message.value and v.image.layout.display == "none"


# --- studio -----------------------------------------------------------------------------------------

def make_studio(sampler=None, **kw) -> Studio:
    st = Studio(fake_model_info(), sampler or FakeSampler(), files=[], min_interval=0.0, **kw)
    st.controls.fields["seconds"].value = 1.0
    return st


def test_studio_samples_every_level_on_a_worker_thread():
    st = make_studio()
    st.picker.pick("Harmony Null", ["soul", "jazz"]); st.lyrics.text.value = "la la"
    st.controls.sample_button.click()
    st.runner.join(10)
    assert st.runner.status == "finished" and st.controls.errors.error is None
    assert {l: (s.done, s.total, s.finished) for l, s in st.tokens.levels.items()} == \
        {2: (32, 32, True), 1: (128, 128, True), 0: (512, 512, True)}  # 1 s = 31.25 top-level tokens, rounded up
    assert {l: len(p) for l, p in st.players.players.items()} == {2: 1, 1: 1, 0: 1}
    meta = st.result.request.metadata[0]
    assert (meta.artist, meta.genres, meta.lyrics) == (8, (9, 6), "la la")
    assert st.alignment.image.value[:4] == b"\x89PNG"
    assert "finished" in st.controls.status.value and "Harmony Null · soul · jazz" in st.controls.status.value
    assert not st.controls.sample_button.disabled and st.controls.cancel_button.disabled


def test_studio_stays_live_and_cancels():
    s = GatedSampler(n=3)
    st = make_studio(s)
    st.controls.sample_button.click()
    s.gate.set(); assert s.sent.wait(5)
    # the worker is blocked inside the sampler; the kernel thread still edits widgets
    assert st.runner.running and st.controls.sample_button.disabled and not st.controls.cancel_button.disabled
    st.lyrics.text.value = "still typing"
    assert "12 / 64" in st.lyrics.count.value
    st.sample()  # a second run is refused, visibly
    assert "already running" in st.controls.errors.text
    st.controls.cancel_button.click(); s.gate.set(); st.runner.join(5)
    assert st.runner.status == "cancelled" and s.closed and "cancelled" in st.controls.status.value
    assert st.tokens.levels[2].done == 1 and not st.tokens.levels[2].finished
    assert not st.controls.sample_button.disabled


def test_studio_shows_errors_in_the_widget():
    st = make_studio(FakeSampler(fail_at_level=1))
    st.controls.sample_button.click(); st.runner.join(10)
    assert st.runner.status == "error"
    assert "RuntimeError" in st.controls.errors.text and "scripted failure at level 1" in st.controls.errors.text
    assert st.controls.errors.widget.layout.display is None  # visible
    assert st.tokens.levels[2].finished and not st.tokens.levels[1].finished
    for w in st.controls.fields["levels"]: w.value = False
    st.controls.sample_button.click()  # invalid request: shown, nothing started
    assert "no level selected" in st.controls.errors.text and st.runner.status == "error"


# --- reconstruction ---------------------------------------------------------------------------------

def test_reconstruction_of_a_file_and_of_an_upload(info):
    rx = ReconstructionExplorer(info, files=[example_clip()], max_seconds=1.0)
    rx.run_button.click(); rx.worker.join(30)
    assert rx.errors.error is None and list(rx.audio) == ["original", "level 0", "level 1", "level 2"]
    assert rx.sc_db["level 0"] < rx.sc_db["level 1"] < rx.sc_db["level 2"]
    assert len(rx.grid.children) == 4
    buf = io.BytesIO(); sf.write(buf, 0.5 * np.sin(np.linspace(0, 2000, 8000)), 8000, format="FLAC")
    rx.upload.value = ({"name": "tune.flac", "type": "audio/flac", "size": len(buf.getvalue()),
                        "content": memoryview(buf.getvalue()), "last_modified": datetime.datetime.now()},)
    rx.worker.join(30)
    assert rx.errors.error is None and "tune.flac" in rx.status.value
    assert len(rx.audio["original"]) == info.sample_rate  # 1 s at the model's rate


def test_reconstruction_rejects_bad_uploads_in_the_widget(info):
    rx = ReconstructionExplorer(info, threaded=False)
    rx.worker.start(rx.load_upload, "noise.wav", bytes(range(256)) * 8)  # not a WAV
    message = rx.errors.text.split("<details>")[0]
    assert "AudioError" in message and "noise.wav: not a readable WAV file" in message
    assert "upload.wav" not in message  # names the user's file, not the temporary copy
    rx.max_bytes = 100
    rx.worker.start(rx.load_upload, "big.wav", b"0" * 101)
    assert "big.wav: 101 bytes is over the 100 bytes upload limit" in rx.errors.text
    rx.worker.start(rx.load_upload, "x.exe", b"0")
    assert "not an audio type" in rx.errors.text


def test_reconstruction_without_a_vqvae_is_disabled():
    rx = ReconstructionExplorer(ModelInfo("labels only", {"a": 0}, {"g": 0}), files=[example_clip()])
    assert rx.run_button.disabled and rx.upload.disabled and "no VQ-VAE" in rx.status.value


# --- co-composer ------------------------------------------------------------------------------------

def test_choice_tree_structure():
    t = ChoiceTree()
    t.add(0, 2.0, {2: toks(3)[0]}); b = t.add(0, 2.0, {2: toks(3)[0]})
    c = t.add(b.id, 4.0, {2: toks(6)[0]})
    t.pick(c.id)
    assert t.path() == [0, 2, 3] and t.to_dict() == {
        "id": 0, "seconds": 0.0, "children": [{"id": 1, "seconds": 2.0, "children": []},
                                              {"id": 2, "seconds": 2.0, "children": [{"id": 3, "seconds": 4.0, "children": []}]}]}
    assert t.lines() == ["• start", "├─  #1 (2 s)", "└─• #2 (2 s)", "   └─★ #3 (4 s)"]
    with pytest.raises(KeyError, match="no node 9"): t.pick(9)
    with pytest.raises(KeyError, match="no node 9"): t.add(9, 1.0, {})


class Recording:
    "Wraps a sampler and keeps the requests it was given."
    def __init__(self, sampler): self.sampler, self.requests = sampler, []
    def __call__(self, request, config): self.requests.append(request); return self.sampler(request, config)


def test_co_composer_candidates_pick_continue_and_branch(info):
    rec = Recording(FakeSampler())
    meta = info.metadata("Ivo Random", ["pop"], "hey", seconds=20)
    cc = CoComposer(info, rec, lambda: SampleRequest(metadata=(meta,), levels=(2, 1), seed=3))
    cc.n_candidates.value, cc.step.value = 2, 1.5
    cc.generate_button.click(); cc.runner.join(10)
    r0 = rec.requests[0]
    assert (r0.batch_size, r0.prime_tokens) == (2, None) and 1.5 <= r0.seconds < 1.5 + 128 / 4000  # whole top-level tokens
    assert r0.metadata[0].total_length == 180 * 4000  # the piece is told it opens a 3-minute song (ModelInfo.song_seconds)
    assert [n.id for n in (cc.tree.nodes[i] for i in cc.tree.nodes[0].children)] == [1, 2]
    assert len(cc.candidates_box.children) == 2 and cc.tree.nodes[1].audio is not None
    cc.candidates_box.children[0].children[2].click()  # Pick #1
    assert cc.tree.current == 1 and cc.generate_button.description == "Continue from #1"
    cc.generate_button.click(); cc.runner.join(10)
    r1 = rec.requests[1]
    assert 3.0 <= r1.seconds < 3.0 + 128 / 4000 and set(r1.prime_tokens) == {2, 1}
    assert torch.equal(r1.prime_tokens[2][1], cc.tree.nodes[1].tokens[2]) and r1.seed != r0.seed
    cc.goto.value = 2; cc.generate_button.click(); cc.runner.join(10)  # branch from the other candidate
    branch = cc.tree.to_dict()["children"][1]["children"]
    assert [(n["id"], n["children"]) for n in branch] == [(5, []), (6, [])] and all(3.0 <= n["seconds"] < 3.1 for n in branch)
    assert "#5" in cc.tree_view.value and "★</span> #2" in cc.tree_view.value


def test_co_composer_errors_are_shown(info):
    cc = CoComposer(info, FakeSampler(fail_at_level=2), SampleRequest)
    cc.generate_button.click(); cc.runner.join(10)
    assert "scripted failure" in cc.errors.text and cc.tree.to_dict()["children"] == []
    cc.step.value = info.max_seconds
    cc.tree.add(0, 1.0, {}); cc.pick(1); cc.generate()
    assert "over the 60 s limit" in cc.errors.text


# --- a real (tiny, untrained) model and notices ---------------------------------------------------

def test_model_info_from_a_loaded_model_drives_the_reconstruction_explorer():
    from types import SimpleNamespace
    from jukebox_nb.prior import Prior, PriorConfig
    from jukebox_nb.vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig.preset("tiny")).eval()
    top = Prior(PriorConfig.preset("tiny", bins=vq.cfg.l_bins)).eval()
    mi = model_info(SimpleNamespace(vqvae=vq, priors={2: top}, name="tiny"))
    c = top.cfg
    assert (mi.name, mi.sample_rate, mi.hops, mi.bins, mi.n_ctx) == ("tiny", 44100, (8, 32, 128), vq.cfg.l_bins, c.n_ctx)
    assert (len(mi.artists), len(mi.genres), mi.max_genres, mi.n_tokens) == (c.n_artists, c.n_genres, c.max_bow_genre_size, 0)
    assert mi.metadata("artist 17").artist == 17 and not mi.fake
    x = 0.3 * np.sin(np.linspace(0, 4000, 11025)).astype(np.float32)
    codes = mi.encode(x, 2)
    assert codes.shape == (11025 // 128,) and codes.dtype == np.int64
    assert mi.decode(codes, 2).shape == (codes.shape[0] * 128,)
    rx = ReconstructionExplorer(mi, threaded=False)
    rx.reconstruct(x, "sine")
    assert rx.errors.error is None and set(rx.sc_db) == {"level 0", "level 1", "level 2"}
    assert all(np.isfinite(v) for v in rx.sc_db.values())


def test_studio_lists_notices_from_the_sampler():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Notice:  # the engine's `Notice` event: a message that is not an error
        message: str

    def sampler(request, config):
        yield Notice("batch size backed off to 1")
        yield from FakeSampler()(request, config)

    st = make_studio(sampler)
    st.controls.sample_button.click(); st.runner.join(10)
    assert st.runner.status == "finished" and st.notices == ["batch size backed off to 1"]
    assert "batch size backed off to 1" in st.controls.notes.value


def test_co_composer_cancel_leaves_the_tree_alone(info):
    s = GatedSampler(n=3)
    cc = CoComposer(info, s, SampleRequest)
    cc.generate_button.click()
    s.gate.set(); assert s.sent.wait(5)
    assert cc.generate_button.disabled and not cc.cancel_button.disabled
    cc.cancel_button.click(); s.gate.set(); cc.runner.join(5)
    assert cc.runner.status == "cancelled" and s.closed and "cancelled" in cc.status.value
    assert cc.tree.to_dict() == {"id": 0, "seconds": 0.0, "children": []} and not cc.generate_button.disabled


def test_same_upload_twice_is_processed_twice(info):
    rx = ReconstructionExplorer(info, threaded=False, max_bytes=10)
    item = {"name": "a.wav", "type": "audio/wav", "size": 11, "content": memoryview(b"x" * 11),
            "last_modified": datetime.datetime.now()}
    rx.upload.value = (item,)
    assert "upload limit" in rx.errors.text and rx.upload.value == ()
    rx.errors.clear(); rx.upload.value = (item,)
    assert "upload limit" in rx.errors.text


def test_studio_sends_each_level_the_ids_of_its_own_label_tables(tmp_path):
    "1b_lyrics-like: a v3 top prior and v2 upsamplers; the picked names become different ids per level."
    import json
    from types import SimpleNamespace
    from jukebox_nb.checkpoints import Vocab
    from jukebox_nb.prior import Prior, PriorConfig
    from jukebox_nb.vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig.preset("tiny")).eval()
    bins = vq.cfg.l_bins
    priors = {2: Prior(PriorConfig.preset("tiny_single", bins=bins)).eval(),
              1: Prior(PriorConfig.preset("tiny_upsampler", bins=bins)).eval(),
              0: Prior(PriorConfig.preset("tiny_upsampler", level=0, hop_length=8, bins=bins)).eval()}
    (tmp_path / "artists.json").write_text(json.dumps({"unknown": 0, "nina simone": 11, "unknown.v2": 0, "nina_simone.v2": 4}))
    (tmp_path / "genres.json").write_text(json.dumps({"unknown": 0, "jazz": 9, "unknown.v2": 0, "jazz.v2": 2}))
    info = model_info(SimpleNamespace(vqvae=vq, priors=priors, name="v3 top, v2 upsamplers", vocab=Vocab.find(tmp_path)))
    st = Studio(info, FakeSampler(), threaded=False)
    st.picker.pick("nina simone", ["jazz"]); st.controls.fields["batch"].value = 2; st.controls.fields["seconds"].value = 3.0
    req = st.request()
    got = {l: [(m.artist, m.genres, m.total_length) for m in req.metadata_for(l)] for l in (2, 1, 0)}
    song = int(info.song_seconds * 44100)  # the tiny top prior's timing range ends at 60 s: the song length stays inside it
    assert info.song_seconds == pytest.approx(60.0) and song < 60 * 44100
    assert got == {2: [(11, (9,), song)] * 2, 1: [(4, (2,), song)] * 2, 0: [(4, (2,), song)] * 2}


# --- issue 18: what a user sees is current, readable and kept -------------------------------------

def test_token_streams_reset_to_waiting_and_hide_maps_until_drawn(info):
    "A reset leaves no counter of the previous run, and a token map is hidden until it has pixels (no broken image)."
    v = TokenStreamView(info, min_interval=0.0)
    assert all(s.image.layout.display == "none" for s in v.levels.values())  # first load: nothing drawn yet
    for e in FakeSampler()(SampleRequest(seconds=1.0)): v.handle(e)
    assert all("done" in s.label.value and s.image.layout.display is None for s in v.levels.values())
    v.reset()
    for s in v.levels.values():
        assert "waiting" in s.label.value and "tokens/s" not in s.label.value and not re.search(r"\d / \d", s.label.value)
        assert (s.progress.value, s.progress.bar_style, s.image.value, s.image.layout.display) == (0, "", b"", "none")


class Switching:
    "Hands each run to the next sampler of a list."
    def __init__(self, *samplers): self.samplers = list(samplers)
    def __call__(self, request, config): return self.samplers.pop(0)(request, config)


def test_cancel_after_a_finished_run_shows_no_stale_counters():
    gated = GatedSampler(n=3)
    st = make_studio(Switching(FakeSampler(), gated))
    st.sample(); st.runner.join(60)
    assert all(s.finished for s in st.tokens.levels.values())
    st.sample(); gated.gate.set(); assert gated.sent.wait(5)
    st.cancel(); gated.gate.set(); st.runner.join(5)
    labels = {l: re.sub("<[^>]+>", "", s.label.value) for l, s in st.tokens.levels.items()}
    assert "1 / 3 tokens" in labels[2] and "cancelled" in labels[2], labels
    for l in (1, 0):  # never reached in the cancelled run: no counts of the finished one
        assert "not sampled" in labels[l] and "done" not in labels[l] and "tokens/s" not in labels[l], labels
        assert st.tokens.levels[l].image.layout.display == "none"


def test_players_cover_the_requested_seconds_and_show_the_exact_length():
    "10 s at 4 kHz is 312.5 top-level tokens: the request rounds up to 313, and each player says how long it is."
    st = make_studio(); st.controls.fields["seconds"].value = 10.0
    assert st.request().seconds >= 10.0
    st.sample(); st.runner.join(60)
    for level in (2, 1, 0):
        n = st.result.audio[level].shape[-1]
        assert n >= 10 * 4000 and n == 313 * 128, (level, n)
        assert f"{n / 4000:.3f} s" in st.players.durations[level][0].value  # 10.016 s, not "10.0 s" or 0:10
    assert "10 s" in st.controls.status.value  # the status repeats what was asked


def test_model_info_rounds_seconds_up_to_whole_top_level_tokens(info):
    for s in (0.25, 1.0, 3.0, 4.0, 10.0, 19.99):
        got = info.whole_seconds(s)
        raw = int(got * info.sample_rate) // info.hops[-1] * info.hops[-1]  # what the engine samples (`song_length`)
        assert s * info.sample_rate <= raw < s * info.sample_rate + info.hops[-1], (s, got, raw)


def test_history_keeps_each_result_with_players_and_a_save_button(tmp_path):
    st = make_studio(); st.history.folder = tmp_path
    st.picker.pick("Gus Sine", ["jazz"]); st.sample(); st.runner.join(60)
    st.controls.fields["seed"].value = 5; st.sample(); st.runner.join(60)
    assert len(st.history.entries) == 2
    new, old = st.history.entries
    assert "seed 5" in new.header.value and "seed 0" in old.header.value and "Gus Sine" in old.header.value
    for e in (new, old):
        assert {l: len(p) for l, p in e.players.players.items()} == {2: 1, 1: 1, 0: 1}
        assert all(s.value[:4] == b"\x89PNG" for ss in e.players.specs.values() for s in ss)
    assert st.history.widget.children[1:] == (new.widget, old.widget)  # newest first
    assert new.players.specs[0][0].value == st.players.specs[0][0].value  # the live run's pictures, not drawn twice
    assert new.players.durations[0][0].value == st.players.durations[0][0].value
    old.save_button.click()
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 1 and (tmp_path / saved[0] / "tokens.safetensors").exists()
    assert "saved" in old.status.value and saved[0] in old.status.value and old.save_button.disabled
    assert "History (2)" in st.tabs.titles


def test_studio_runs_one_job_at_a_time():
    "While the co-composer samples, the Sample button (and the reconstruction) wait, and the other way round."
    gated, second = GatedSampler(n=3), GatedSampler(n=3)
    st = make_studio(Switching(gated, second))
    st.composer.generate_button.click(); gated.gate.set(); assert gated.sent.wait(5)
    assert st.controls.sample_button.disabled and st.explorer.upload.disabled
    st.sample()
    assert "co-composer" in st.controls.errors.text and not st.runner.running
    st.composer.cancel_button.click(); gated.gate.set(); st.composer.runner.join(5)
    assert not st.controls.sample_button.disabled and not st.composer.generate_button.disabled
    st.controls.errors.clear(); st.sample()
    assert st.runner.running and st.composer.generate_button.disabled
    st.cancel(); second.gate.set(); st.runner.join(5)
    assert not st.composer.generate_button.disabled


def test_artist_filter_lists_only_matches_and_keeps_the_pick(info):
    p = ArtistGenrePicker(info)
    p.pick("Echo Dummy")
    p.artist_search.value = "fix"
    assert p.artist.options == ("Fiona Fixture",) and p.artist_name == "Echo Dummy"
    assert "Echo Dummy" in p.picked.value
    p.artist_search.value = ""
    assert p.artist.value == "Echo Dummy" and len(p.artist.options) == len(info.artists)
    p.artist_search.value = "fix"; p.artist.value = "Fiona Fixture"
    assert p.artist_name == "Fiona Fixture" and "Fiona Fixture" in p.picked.value


def test_co_composer_shows_tokens_per_level_and_says_seconds_are_added(info):
    cc = CoComposer(info, FakeSampler(), lambda: SampleRequest(levels=(2, 1)), threaded=False)
    assert "add" in cc.step.description
    cc.n_candidates.value, cc.step.value = 2, 1.0
    cc.generate()
    assert {l: (s.done, s.finished) for l, s in cc.tokens.levels.items() if l} == {2: (32, True), 1: (128, True)}
    assert "128 / 128" in cc.tokens.levels[1].label.value


def test_smaller_points(info):
    # token maps explain themselves: what a row is and what the colours mean
    s = LevelStream(1, bins=64, hop=32, sample_rate=4000, min_interval=0.0)
    for e in FakeSampler()(SampleRequest(seconds=1.0, levels=(2, 1))):
        if getattr(e, "level", None) == 1: s.handle(e)
    assert "time →" in s.legend.value and "code 0" in s.legend.value and "63" in s.legend.value
    assert s.legend.layout.display is None
    # no alignment heading for a model without lyrics
    assert AlignmentView(fake_model_info(n_tokens=0)).widget.layout.display == "none"
    assert AlignmentView(info).widget.layout.display is None
    # plain words in the controls
    c = SamplingControls(info)
    labels = [w.description for w in (c.fields["top_k"], c.fields["top_p"])]
    assert "0 = off" in labels[0] and "1 = off" in labels[1]
    assert "hop_fraction" not in repr([w.value for w in _html_widgets(c.widget)])
    # the tree's star is readable
    t = CoComposer(info, FakeSampler(), SampleRequest, threaded=False)
    assert 'class="jb-star"' in t.tree_view.value


def _html_widgets(w):
    "Every HTML widget under `w`."
    out = [w] if isinstance(w, W.HTML) else []
    for c in getattr(w, "children", ()): out += _html_widgets(c)
    return out


def test_upload_count_stays_and_the_upload_is_offered_again(info):
    rx = ReconstructionExplorer(info, threaded=False, max_seconds=1.0)
    buf = io.BytesIO(); sf.write(buf, 0.5 * np.sin(np.linspace(0, 2000, 8000)), 8000, format="FLAC")
    item = {"name": "tune.flac", "type": "audio/flac", "size": len(buf.getvalue()), "content": memoryview(buf.getvalue()),
            "last_modified": datetime.datetime.now()}
    rx.upload.value = (item,)
    assert rx.errors.error is None and len(rx.upload.value) == 1  # the button keeps saying "Upload (1)"
    assert rx.choice.value == "upload:tune.flac" and "tune.flac" in rx.choice.label
    rx.audio = {}; rx.run_button.click()  # reconstruct the upload again from the list
    assert rx.errors.error is None and list(rx.audio) == ["original", "level 0", "level 1", "level 2"]


# --- karaoke ----------------------------------------------------------------------------------------

def test_studio_karaoke_lights_each_word_by_the_top_level_player():
    from jukebox_nb.studio import lyric_words
    st = make_studio(threaded=False)
    st.picker.pick("Harmony Null", ["soul"]); st.lyrics.text.value = "Oh my darling, Clementine"
    st.controls.sample_button.click()
    assert st.runner.status == "finished" and st.karaoke.errors.error is None
    words = st.karaoke.words
    assert [w.word for w in words] == [w for w, _, _ in lyric_words("Oh my darling, Clementine")]
    # the fake alignment is a diagonal over the 1 s: the words follow each other and cover the sample
    assert words[0].start == 0 and all(a.end == b.start for a, b in zip(words, words[1:])) and abs(words[-1].end - 32 * 128 / 4000) < 1e-9
    line = st.karaoke.line.value
    spans = re.findall(r"<span class='w' data-s='([\d.]+)' data-e='([\d.]+)'[^>]*>([^<]*)</span>", line)
    assert [s[2] for s in spans] == [w.word for w in words]
    player = st.players.players[2][0]
    assert st.karaoke.uid in player._dom_classes and f"data-player='{st.karaoke.uid}'" in line  # lit by the top level's player
    assert all(st.karaoke.uid not in p._dom_classes for l in (1, 0) for p in st.players.players[l])
    assert "onerror=" in line and "timeupdate" in line  # the few lines of script that light the words
    assert "reached" in st.karaoke.message.value
    st.karaoke.reset()  # a new run starts: nothing of the last run's words is still said
    assert st.karaoke.line.value == "" and "reached" not in st.karaoke.message.value
    st.controls.fields["seconds"].value = 0.5; st.lyrics.text.value = ""  # no lyrics: the line is cleared and says so
    st.controls.sample_button.click()
    assert st.karaoke.words is None and st.karaoke.line.value == "" and "no lyrics" in st.karaoke.message.value


def test_karaoke_view_only_for_a_model_with_lyrics_and_errors_shown(info):
    from jukebox_nb.widgets import KaraokeView
    assert KaraokeView(fake_model_info(n_tokens=0)).widget.layout.display == "none"
    assert KaraokeView(info).widget.layout.display is None
    broken = ModelInfo("m", {"a": 0}, {"g": 0}, n_tokens=8, alignment=lambda r, i: (np.zeros((2, 3)), "abc"))
    v = KaraokeView(broken)
    req = SampleRequest(metadata=(broken.metadata("a", lyrics="abc", seconds=1.0),), seconds=1.0, levels=(2,))
    v.handle(Finished(SampleResult(request=req, tokens={2: toks(3)})))
    assert "weights must be [n_chars=3, T]" in str(v.errors.error)


def test_studio_busy_flags_from_many_threads_end_consistent():
    "Jobs report busy/idle from worker threads: whatever the interleaving, all idle leaves every button unlocked."
    import threading
    st = make_studio(threaded=False)
    jobs = list(st._busy)
    assert len(jobs) == 3  # every job known up front: no key is added while another thread reads the flags
    def toggle(job):
        for _ in range(200): st._set_busy(job, True); st._set_busy(job, False)
    ts = [threading.Thread(target=toggle, args=(j,)) for j in jobs for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert st.controls.locked is None and st.composer.locked is None and st.explorer.locked is None


def test_reconstruct_locks_the_studio_before_its_thread_runs():
    "A click on Sample right after Reconstruct finds it locked, even if the worker thread has not started yet."
    st = make_studio()
    started = []
    st.explorer.worker.start = lambda fn, *a: started.append((fn, a))  # the thread is slow to start
    st.explorer.run_button.click()
    assert started and st.explorer.busy and st.controls.sample_button.disabled
    fn, a = started[0]
    with pytest.raises(ValueError, match="no file chosen"): fn(*a)  # the job runs (this studio has no file) and ends:

    assert not st.explorer.busy and not st.controls.sample_button.disabled
