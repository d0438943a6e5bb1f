"""The sampling engine (`jukebox_nb.sampling`) on tiny random models: every mode, the fast decode step
against the prior's own incremental path, saving/resuming, co-composition, progress, OOM back-off,
bad input, and 2-process distributed sampling. Speed is measured by `benchmarks/sampling.py`, not here."""
import io
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import jukebox_nb.decode as D
import jukebox_nb.sampling as S
from cpu_launch import accelerate_launch
from jukebox_nb.conditioning import Metadata
from jukebox_nb.prior import Prior, PriorConfig
from jukebox_nb.decode import DecodeStep
from jukebox_nb.checkpoints import Jukebox
from jukebox_nb.compose import Composition
from jukebox_nb.sampling import (Decoded, Finished, LevelStarted,
                                 Notice, ResultError, SampleConfig, SampleRequest, SampleResult, TokensSampled,
                                 WindowSampled, continue_request, load_result, progress, resample_request, resume_request,
                                 sample, sample_iter, save_result, upsample_request)

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


def secs(top_tokens: int) -> float:
    "Seconds that round down to exactly `top_tokens` top-level tokens."
    return (top_tokens * 128 + 1) / SR


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return Jukebox.tiny()


def req(n_top=34, B=2, **kw):
    kw.setdefault("seconds", secs(n_top))
    return SampleRequest(metadata=[Metadata(artist=i + 1, genres=(i,), total_length=1) for i in range(B)], **kw)


# ---- the decode step -------------------------------------------------------------------------------
STEP_PRESETS = {"tiny": {}, "tiny_lyrics": {}, "tiny_single": {}, "tiny_upsampler": {}, "dense": dict(attn_order=0)}


def _cond(p: Prior, N: int):
    c = p.cfg
    y = None
    if c.labels:
        m = [Metadata(artist=1, genres=(3,), total_length=SR * 10, offset=0, lyrics="la la la hey " * 5)] * N
        y = p.tokenize(m)
    z = torch.randint(c.bins, (N, c.n_ctx // c.cond_downsample)) if c.upsampler else None
    return p.condition(y, z)


@pytest.mark.parametrize("name", list(STEP_PRESETS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("script, fold", [(True, True), (False, True), (True, False)])
def test_decoder_matches_extend(name, dtype, script, fold):
    "DecodeStep gives the logits of Prior.extend for every attention pattern, and leaves caches extend can continue."
    torch.manual_seed(0)
    over = STEP_PRESETS[name]
    p = Prior(PriorConfig.preset("tiny" if name == "dense" else name, **over)).eval()
    with torch.no_grad():  # live zero-initialised paths (enc_dec output projections, biases)
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    N, n = 3, p.cfg.n_ctx - 1
    z = torch.randint(p.cfg.bins, (N, n))
    step = DecodeStep(p, dtype, script=script, fold=fold)
    assert step.scripted == script and step.fold == fold  # TorchScript compiles the layer loop of the installed module
    assert step.linear == (dtype != torch.float32)  # on a CPU, bf16 weight matrices are kept (out, in) for F.linear
    if not fold:  # unfolded: the step reads the prior's own weight tensors (no copies)
        assert any(t.data_ptr() == p.prior.transformer._attn_mods[0].attn.c_attn.w.data_ptr() for t in step.ws) == (dtype == torch.float32)
    with torch.inference_mode():
        cond = _cond(p, N)
        ref, fast = p.start(cond, N, dtype), p.start(cond, N, dtype)
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        # the prefix goes through the training path in one pass; the next-token logits agree with extend's
        torch.testing.assert_close(step.prefill(fast, z[:, :5]).float(), p.extend(ref, z[:, :5])[:, -1].float(), atol=tol, rtol=tol)
        first = fast.t
        for i in range(5, n - 6):
            want = p.extend(ref, z[:, i:i + 1])[:, -1]
            got = step(z[:, i], fast)
            torch.testing.assert_close(got.float(), want.float(), atol=tol, rtol=tol)
        step.sync_positions(fast, first)
        torch.testing.assert_close(p.extend(fast, z[:, n - 6:]).float(), p.extend(ref, z[:, n - 6:]).float(),
                                   atol=1e-5 if dtype == torch.float32 else 2e-2, rtol=1e-3)


@pytest.mark.parametrize("name", list(STEP_PRESETS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_static_step_matches_extend(name, dtype):
    """DecodeStep(static=True), the fixed-shape step a CUDA graph replays, gives extend's logits for every pattern, and again
    in a second window that reuses the first one's caches (stale keys must stay masked)."""
    torch.manual_seed(0)
    p = Prior(PriorConfig.preset("tiny" if name == "dense" else name, **STEP_PRESETS[name])).eval()
    with torch.no_grad():
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    N, n, tol = 3, p.cfg.n_ctx - 1, (1e-5 if dtype == torch.float32 else 2e-2)
    step = DecodeStep(p, dtype, static=True)
    assert step.static and not step.scripted and not step.cuda_graph
    with torch.inference_mode():
        cond, kept = _cond(p, N), None
        for P in (5, 2):  # two windows with different known prefixes
            z = torch.randint(p.cfg.bins, (N, n))
            ref, st = p.start(cond, N, dtype), step.start(cond, N, dtype)
            kept = kept or [c.k.data_ptr() for c in st.caches]
            assert [c.k.data_ptr() for c in st.caches] == kept  # the same buffers every window
            torch.testing.assert_close(step.prefill(st, z[:, :P]).float(), p.extend(ref, z[:, :P])[:, -1].float(), atol=tol, rtol=tol)
            first = st.t
            for i in range(P, n - 6):
                torch.testing.assert_close(step(z[:, i], st).float(), p.extend(ref, z[:, i:i + 1])[:, -1].float(), atol=tol, rtol=tol)
            step.sync_positions(st, first)
            torch.testing.assert_close(p.extend(st, z[:, n - 6:]).float(), p.extend(ref, z[:, n - 6:]).float(), atol=tol, rtol=1e-3)
        with pytest.raises(ValueError, match="its own `start`"): step(z[:, 0], p.start(cond, N, dtype))


def test_static_step_samples_the_default_steps_tokens(models):
    "sample_tokens through the static step (its own caches, window after window) draws the default step's tokens."
    p = models.priors[2]
    with torch.inference_mode(): cond = _cond(p, 2)
    prefix = torch.randint(p.cfg.bins, (2, 7))
    outs = []
    for step in (DecodeStep(p), DecodeStep(p, static=True)):
        g = torch.Generator().manual_seed(0)
        for P in (7, 0):  # two windows through one step
            it = S.sample_tokens(p, cond, prefix[:, :P], p.cfg.n_ctx, generator=g, step=step, report_every=8)
            while True:
                try: next(it)
                except StopIteration as e: outs.append(e.value); break
    assert torch.equal(outs[0], outs[2]) and torch.equal(outs[1], outs[3])


@pytest.mark.parametrize("name", list(STEP_PRESETS))
@pytest.mark.parametrize("script", [True, False])
def test_split_matrices_match_extend(name, script):
    "DecodeStep(split=2): float32 matrices as column-block views (one bmm, a thread per block) give extend's logits."
    torch.manual_seed(0)
    p = Prior(PriorConfig.preset("tiny" if name == "dense" else name, **STEP_PRESETS[name])).eval()
    with torch.no_grad():
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    step = DecodeStep(p, split=2, script=script, fold=False)
    assert step.split == 2 and step.step_threads(1) is None  # split steps keep the process's threads
    mats = [t for t in step.ws if t.dim() == 3]
    assert mats and all(t._base is not None for t in mats)  # views of the prior's own weights, not copies
    assert DecodeStep(p).split == 0  # tiny matrices: not split by default
    N, n, z = 2, p.cfg.n_ctx - 1, torch.randint(p.cfg.bins, (2, p.cfg.n_ctx - 1))
    with torch.inference_mode():
        cond = _cond(p, N)
        ref, st = p.start(cond, N), step.start(cond, N)
        torch.testing.assert_close(step.prefill(st, z[:, :3]), p.extend(ref, z[:, :3])[:, -1], atol=1e-5, rtol=1e-5)
        for i in range(3, n):
            torch.testing.assert_close(step(z[:, i], st), p.extend(ref, z[:, i:i + 1])[:, -1], atol=1e-5, rtol=1e-5)

def test_large_matrices_step_on_every_thread():
    "A prior with a LARGE_MATRIX: float32 steps split its matrices over the process's threads; bf16 steps keep the threads too."
    p, old = Prior(PriorConfig.preset("tiny", width=1024)).eval(), torch.get_num_threads()
    assert max(q.numel() for q in p.prior.transformer.parameters()) >= D.LARGE_MATRIX
    try:
        torch.set_num_threads(2)
        fp32, bf16 = DecodeStep(p), DecodeStep(p, torch.bfloat16)
        assert fp32.split == 2 and fp32.step_threads(1) is None
        assert bf16.split == 0 and bf16.linear and bf16.step_threads(1) is None  # F.linear splits bf16 rows over threads itself
        torch.set_num_threads(1)
        assert DecodeStep(p).split == 0  # one thread: nothing to split for
    finally: torch.set_num_threads(old)

def test_small_steps_run_on_one_cpu_thread(models):
    "On a CPU a step of batch · width < 8192 (a prefill: < 65536) runs on one intra-op thread and restores the setting; 0 keeps it."
    p, old = models.priors[2], torch.get_num_threads()
    seen = []
    def spy(step):
        f = step.layers_fn
        step.layers_fn = lambda *a: seen.append(torch.get_num_threads()) or f(*a)
        return step
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            cond = _cond(p, 2)
            for kw in ({}, {"threads": 0}, {"threads": 2}):
                step = spy(DecodeStep(p, **kw))
                st = step.start(cond, 2); step.prefill(st, torch.zeros(2, 0, dtype=torch.long))
                step(torch.zeros(2, dtype=torch.long), st)
                assert torch.get_num_threads() == 2
        assert seen == [1, 2, 2]
        assert DecodeStep(p).step_threads(8192 // p.cfg.width) is None  # large enough for a second thread to pay
        step, seen = DecodeStep(p), []  # a short prefill too (below 65536 rows × width)
        f = step._prefill
        step._prefill = lambda *a: seen.append(torch.get_num_threads()) or f(*a)
        with torch.inference_mode(): step.prefill(step.start(cond, 2), torch.zeros(2, 3, dtype=torch.long))
        assert seen == [1] and torch.get_num_threads() == 2
        assert step.step_threads(D.PREFILL_ROWS_WIDTH // p.cfg.width, D.PREFILL_ROWS_WIDTH) is None
        assert DecodeStep(p, threads=3).step_threads(1) == 3
    finally: torch.set_num_threads(old)
    with pytest.raises(ValueError, match="step_threads must be >= 0"): SampleConfig(step_threads=-1)
    with pytest.raises(ValueError, match="threads must be >= 0"): DecodeStep(p, threads=-1)

def test_cuda_graph_needs_a_cuda_device(models):
    "cuda_graph=True on a CPU (named, so that the check holds on a GPU machine too) says what is wrong before anything is sampled; it cannot be combined with compile or the reference path."
    with pytest.raises(ValueError, match="needs a CUDA device"): next(sample_iter(models, req(34, levels=(2,)), SampleConfig(cuda_graph=True, device="cpu")))
    with pytest.raises(ValueError, match="needs the prior on a CUDA device"): DecodeStep(models.priors[2], cuda_graph=True)
    with pytest.raises(ValueError, match="leave compile off"): SampleConfig(cuda_graph=True, compile=True)
    with pytest.raises(ValueError, match="alternatives"): DecodeStep(models.priors[2], compile=True, static=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (benchmarks/gpu_check.sh runs this on a lent GPU)")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_graph_step_matches_eager_on_gpu(dtype):
    "On a GPU the replayed CUDA graph gives the eager static step's logits, window after window, and sample() runs with it."
    torch.manual_seed(0)
    p = Prior(PriorConfig.preset("tiny_single")).eval().cuda()
    with torch.no_grad():
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    eager, graph = DecodeStep(p, dtype, static=True), DecodeStep(p, dtype, cuda_graph=True)
    with torch.inference_mode():
        cond = p.condition(p.tokenize([Metadata(artist=1, genres=(3,), total_length=SR * 10, lyrics="la la hey " * 5)] * 2).cuda())
        for P in (5, 2):
            z = torch.randint(p.cfg.bins, (2, p.cfg.n_ctx - 1), device="cuda")
            a, b = eager.start(cond, 2, dtype), graph.start(cond, 2, dtype)
            eager.prefill(a, z[:, :P]); graph.prefill(b, z[:, :P])
            for i in range(P, p.cfg.n_ctx - 1):
                torch.testing.assert_close(graph(z[:, i], b).float(), eager(z[:, i], a).float(), atol=1e-3, rtol=1e-3)
    m = Jukebox.tiny()
    res = sample(m, req(34, levels=(2, 1)), SampleConfig(device="cuda", cuda_graph=True, decode=False, dtype=str(dtype).split(".")[1]))
    assert res.complete and res.tokens[1].shape == (2, 136)

def test_fast_and_reference_paths_sample_the_same(models):
    "Same seed, same tokens through the fast decode step and through Prior.extend."
    r = req(40, B=2, levels=(2,))
    a = sample(models, r, SampleConfig(decode=False))
    b = sample(models, r, SampleConfig(decode=False, decode_step="reference"))
    assert torch.equal(a.tokens[2], b.tokens[2])


def test_bfloat16_sampling_runs_end_to_end(models):
    "SampleConfig(dtype='bfloat16'): caches and decode weights in bf16, every level complete and in range."
    res = sample(models, req(34, B=1, levels=(2, 1)), SampleConfig(dtype="bfloat16", decode=False))
    assert res.complete and res.tokens[1].shape == (1, 136) and int(res.tokens[1].max()) < 32


# ---- modes -----------------------------------------------------------------------------------------
def test_ancestral_all_levels(models):
    "Top first; per level LevelStarted, windows, LevelFinished, Decoded; Finished last with every level."
    evs = list(sample_iter(models, req(34)))
    kinds = [type(e).__name__ for e in evs]
    assert kinds[0] == "LevelStarted" and kinds[-1] == "Finished"
    assert [e.level for e in evs if isinstance(e, LevelStarted)] == [2, 1, 0]
    assert [e.level for e in evs if isinstance(e, Decoded)] == [2, 1, 0]
    res = evs[-1].result
    assert res.complete and res.model == "tiny"
    assert {l: tuple(t.shape) for l, t in res.tokens.items()} == {2: (2, 34), 1: (2, 136), 0: (2, 544)}
    assert all(a.shape == (2, 34 * 128) for a in res.audio.values())
    for l in (2, 1, 0):  # windows of a level end in increasing order and cover it
        ends = [e.end for e in evs if isinstance(e, WindowSampled) and e.level == l]
        assert ends == sorted(ends) and ends[-1] == res.tokens[l].shape[1]
        assert int(res.tokens[l].max()) < 32


def test_oracle_window_starts(models):
    "n_ctx 256, hop fractions (0.5, 0.5, 0.125): top windows at 0/32/64 for 320 tokens, 9 level-1 windows (§11.2)."
    big = PriorConfig.preset("tiny", bins=32, n_ctx=256, blocks=16, depth=2, min_duration=0.01)
    up = PriorConfig.preset("tiny_upsampler", bins=32, n_ctx=256, blocks=16, depth=1)
    torch.manual_seed(0)
    m = Jukebox(models.vqvae, {2: Prior(big).eval(), 1: Prior(up).eval()}, "oracle-shaped")
    r = SampleRequest(batch=1, seconds=secs(320), levels=(2, 1), hop_fraction=(0.5, 0.5, 0.125))
    evs = list(sample_iter(m, r, SampleConfig(decode=False, chunk_size=256)))
    starts = {l: [e.start for e in evs if isinstance(e, WindowSampled) and e.level == l] for l in (2, 1)}
    assert starts[2] == [0, 32, 64]
    assert starts[1] == list(range(0, 1025, 128)) and len(starts[1]) == 9
    assert [e.n_windows for e in evs if isinstance(e, LevelStarted)] == [3, 9]
    assert evs[-1].result.tokens[1].shape == (1, 1280)


def test_continue_keeps_prefix(models):
    "Continuing 40 top tokens to 60 gives 60 tokens whose first 40 are the old ones."
    first = sample(models, req(40, levels=(2,)), SampleConfig(decode=False))
    assert first.tokens[2].shape == (2, 40)
    more = sample(models, continue_request(models, first, secs(60), seed=5))
    assert more.tokens[2].shape == (2, 60)
    assert torch.equal(more.tokens[2][:, :40], first.tokens[2])
    with pytest.raises(ValueError, match="not longer than the result"):
        continue_request(models, first, secs(30))


def test_primed_from_audio_at_another_rate(models):
    "Prime audio at 22.05 kHz is resampled (one Notice says so, no warning besides), encoded, kept, continued."
    t = np.arange(SR // 4) / 22050
    wave = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    r = req(40, levels=(2,), prime_audio=wave, prime_sample_rate=22050, prime_seconds=secs(20))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Notice is the one report: users would see a warning twice
        evs = list(sample_iter(models, r, SampleConfig(decode=False)))
    assert [e.message for e in evs if isinstance(e, Notice)] == ["prime audio at 22050 Hz resampled to the model's 44100 Hz"]
    res = evs[-1].result
    from jukebox_nb.audio import resample
    want = models.vqvae.encode(torch.from_numpy(resample(wave, 22050, SR)[:20 * 128])[None], levels=2)
    assert torch.equal(res.tokens[2][:, :20], want.expand(2, -1))
    assert res.tokens[2].shape == (2, 40)
    with pytest.raises(ValueError, match="shorter than prime_seconds"):
        list(sample_iter(models, replace(r, prime_audio=wave[:2000], prime_sample_rate=None)))


def test_primed_from_a_file_at_another_rate(models, tmp_path):
    "A prime audio file at 22.05 kHz is read, resampled with a Notice, and its codes kept."
    from jukebox_nb.audio import save_wav
    t = np.arange(22050 // 4) / 22050
    path = save_wav(tmp_path / "prime.wav", (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 22050)
    seen = []
    res = sample(models, req(40, levels=(2,), prime_audio=str(path), prime_seconds=secs(16)), SampleConfig(decode=False),
                 on_event=lambda e: seen.append(e.message) if isinstance(e, Notice) else None)
    assert seen == ["prime audio at 22050 Hz resampled to the model's 44100 Hz"]
    with pytest.warns(UserWarning, match="22050 Hz resampled"):  # without on_event, sample() passes a Notice on as a warning
        sample(models, req(40, levels=(2,), prime_audio=str(path), prime_seconds=secs(16)), SampleConfig(decode=False))
    assert res.tokens[2].shape == (2, 40) and torch.equal(res.tokens[2][0, :16], res.tokens[2][1, :16])
    with pytest.raises(Exception, match="no such file"):
        next(sample_iter(models, req(40, levels=(2,), prime_audio=str(tmp_path / "missing.wav"), prime_seconds=secs(16))))


def test_upsampler_windows_see_the_codes_above(models, monkeypatch):
    "Every upsampler window is conditioned on the level-above codes under it: [start/4, start/4 + n_ctx/4)."
    top = sample(models, req(34, levels=(2,)), SampleConfig(decode=False))
    seen, orig = [], Prior.condition
    def spy(self, y=None, z_cond=None):
        if z_cond is not None: seen.append((self.cfg.level, z_cond.clone()))
        return orig(self, y, z_cond)
    monkeypatch.setattr(Prior, "condition", spy)
    evs = list(sample_iter(models, upsample_request(models, top, (1,)), SampleConfig(decode=False)))
    starts = [e.start for e in evs if isinstance(e, WindowSampled)]
    assert len(seen) == len(starts) > 1
    for (lvl, z), s in zip(seen, starts):
        assert lvl == 1 and torch.equal(z, top.tokens[2][:, s // 4:s // 4 + 8])
    assert torch.equal(evs[-1].result.tokens[2], top.tokens[2])


def test_resample_one_level(models):
    "Re-sampling level 1 keeps level 2 exactly, draws new level-1 tokens and drops level 0."
    full = sample(models, req(34), SampleConfig(decode=False))
    again = sample(models, resample_request(models, full, 1), SampleConfig(decode=False))
    assert torch.equal(again.tokens[2], full.tokens[2])
    assert again.tokens[1].shape == full.tokens[1].shape and not torch.equal(again.tokens[1], full.tokens[1])
    assert 0 not in again.tokens
    with pytest.raises(ValueError, match="conditioned on level 2"):
        list(sample_iter(models, replace(req(34), levels=(1,))))


# ---- results that survive ----------------------------------------------------------------------------
def test_save_load_roundtrip(models, tmp_path):
    res = sample(models, req(34, levels=(2, 1)))
    save_result(res, tmp_path / "r")
    back = load_result(tmp_path / "r", models)
    assert back.complete and back.request == replace(res.request, prime_tokens=None)
    for l in res.tokens: assert torch.equal(back.tokens[l], res.tokens[l])
    for l in res.audio: np.testing.assert_array_equal(back.audio[l], res.audio[l])
    assert (tmp_path / "r" / "level_1" / "item_1.wav").exists()
    assert not list((tmp_path / "r").rglob("*.tmp"))


def test_result_from_another_model_is_refused(models, tmp_path):
    res = sample(models, req(34, levels=(2,)), SampleConfig(decode=False))
    save_result(res, tmp_path / "r")
    other = Jukebox(models.vqvae, models.priors, "other")
    with pytest.raises(ResultError, match="sampled by model 'tiny', not 'other'"):
        load_result(tmp_path / "r", other)
    with pytest.raises(ResultError, match="not 'other'"):
        continue_request(other, res, secs(60))
    with pytest.raises(ResultError, match="no result.json"):
        load_result(tmp_path / "nothing")


def _interrupted(models, r, stop_level, stop_window):
    part = SampleResult(r)
    it = sample_iter(models, r, SampleConfig(decode=False, report_every=4), into=part)
    for ev in it:
        if isinstance(ev, TokensSampled) and ev.level == stop_level and ev.window == stop_window: break
    it.close()  # cancelling = closing the generator (as a widget's Cancel button does)
    return part


def test_interrupt_save_resume(models, tmp_path):
    "Close the generator in the middle of level 1, save the partial result, load it, resume: complete, prefix kept."
    r = req(34)
    full = sample(models, r, SampleConfig(decode=False))
    part = _interrupted(models, r, 1, 3)
    assert not part.complete and part.tokens[2].shape == (2, 34)
    kept = part.tokens[1].shape[1]
    assert 0 < kept < 136 and 0 not in part.tokens  # up to the last finished window of level 1
    save_result(part, tmp_path / "p")
    loaded = load_result(tmp_path / "p", models)
    assert not loaded.complete
    done = sample(models, resume_request(models, loaded), SampleConfig(decode=False))
    assert done.complete
    assert {l: t.shape for l, t in done.tokens.items()} == {l: t.shape for l, t in full.tokens.items()}
    assert torch.equal(done.tokens[2], part.tokens[2]) and torch.equal(done.tokens[1][:, :kept], part.tokens[1])


def test_failure_inside_the_engine_keeps_finished_windows(models, monkeypatch):
    "An error raised by the model mid-level propagates; `into` keeps every finished window, resumable."
    r, calls = req(34, levels=(2, 1)), {"n": 0}
    orig = DecodeStep.__call__
    def flaky(self, tok, st, pc=None, xc=None):
        calls["n"] += 1
        if calls["n"] == 120: raise RuntimeError("device lost")
        return orig(self, tok, st, pc, xc)
    monkeypatch.setattr(DecodeStep, "__call__", flaky)
    part = SampleResult(r)
    with pytest.raises(RuntimeError, match="device lost"):
        for _ in sample_iter(models, r, SampleConfig(decode=False), into=part): pass
    monkeypatch.setattr(DecodeStep, "__call__", orig)
    assert 2 in part.tokens and not part.complete
    done = sample(models, resume_request(models, part), SampleConfig(decode=False))
    for l, t in part.tokens.items(): assert torch.equal(done.tokens[l][:, :t.shape[1]], t)
    assert done.tokens[1].shape == (2, 136)


# ---- co-composition, progress, devices -------------------------------------------------------------
def test_cocomposition_tree(models):
    c = Composition(models, SampleRequest(metadata=Metadata(artist=2, total_length=1), seconds=1.0))
    kids = c.extend(3, secs(20))
    assert len(kids) == 3 and c.nodes[0].children == kids
    assert all(c.nodes[k].tokens.shape == (1, 20) and c.nodes[k].preview.shape == (20 * 128,) for k in kids)
    c.choose(kids[1])
    grand = c.extend(2, secs(36))
    for g in grand:  # each continuation keeps the chosen candidate's tokens
        assert torch.equal(c.nodes[g].tokens[:, :20], c.nodes[kids[1]].tokens) and c.nodes[g].tokens.shape == (1, 36)
    c.choose(grand[0])
    assert c.path() == [0, kids[1], grand[0]]
    final = c.finish((1,))
    assert torch.equal(final.tokens[2], c.nodes[grand[0]].tokens) and final.tokens[1].shape == (1, 144)
    with pytest.raises(KeyError, match="no node 99"): c.choose(99)


def test_cocomposition_tree_is_saved_and_loaded(models, tmp_path):
    c = Composition(models, SampleRequest(metadata=Metadata(artist=2, total_length=1), seconds=1.0))
    kids = c.extend(2, secs(16)); c.choose(kids[0])
    back = Composition.load(c.save(tmp_path / "tree"), models)
    assert back.current == kids[0] and back.nodes[0].children == kids and back.request == c.request
    for k in kids:
        assert torch.equal(back.nodes[k].tokens, c.nodes[k].tokens)
        np.testing.assert_array_equal(back.nodes[k].preview, c.nodes[k].preview)
    (more,) = back.extend(1, secs(24))  # the loaded tree goes on growing from its current node
    assert torch.equal(back.nodes[more].tokens[:, :16], c.nodes[kids[0]].tokens) and back.nodes[more].parent == kids[0]
    with pytest.raises(ResultError, match="made with model 'tiny'"):
        Composition.load(tmp_path / "tree", Jukebox(models.vqvae, models.priors, "other"))


def test_progress_bars(models):
    buf = io.StringIO()
    evs = list(progress(sample_iter(models, req(34, levels=(2, 1)), SampleConfig(decode=False, report_every=4)), file=buf))
    out = buf.getvalue()
    assert isinstance(evs[-1], Finished) and "level 2" in out and "level 1" in out and "136/136" in out


def test_device_comes_from_accelerate():
    from accelerate import PartialState
    assert S.resolve_device(None) == PartialState().device
    assert S.resolve_device("cpu") == torch.device("cpu")


def test_batch_backs_off_on_out_of_memory(models, monkeypatch):
    "A window that runs out of memory at batch 4 is retried at 2, with a Notice; the result is complete."
    orig = S.sample_tokens
    def picky(prior, cond, prefix, *a, **k):
        if prefix.shape[0] > 2: raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return (yield from orig(prior, cond, prefix, *a, **k))
    monkeypatch.setattr(S, "sample_tokens", picky)
    evs = list(sample_iter(models, req(34, B=4, levels=(2,)), SampleConfig(decode=False, max_batch_size=8)))
    assert any(isinstance(e, Notice) and "batch 4" in e.message for e in evs)
    assert evs[-1].result.tokens[2].shape == (4, 34)
    def broken(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access")
        yield
    monkeypatch.setattr(S, "sample_tokens", broken)
    with pytest.raises(RuntimeError, match="illegal memory access"):  # other errors are not retried
        list(sample_iter(models, req(34, B=4, levels=(2,))))


# ---- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: req(34, seconds=0.001), "shorter than one top-level token"),
    (lambda: req(34, seconds=61.0), "outside the timing range"),
    (lambda: req(34, temperature=(1.0, 1.0, 0.0)), "temperatures must be > 0"),
    (lambda: req(34, top_p=1.5), "top_p must be in"),
    (lambda: req(34, top_p=0.0), "top_p must be in"),
    (lambda: req(34, hop_fraction=(0.5, 0.1, 0.125)), "not a multiple of 4"),
    (lambda: req(34, prime_tokens={2: torch.full((1, 5), 40)}), "were they sampled by another model"),
    (lambda: req(34, prime_tokens={2: torch.zeros(1, 50, dtype=torch.long)}, levels=(2,)), "ask for more seconds"),
    (lambda: req(34, prime_audio=np.zeros(SR, np.float32), prime_seconds=0.0001), "less than one top-level token"),
])
def test_bad_requests_fail_before_sampling(models, make, match):
    with pytest.raises(ValueError, match=match):
        next(sample_iter(models, make()))


def test_bad_config():
    with pytest.raises(ValueError, match="dtype must be"): SampleConfig(dtype="float64")
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"): SampleConfig(max_batch_size=0)


def test_distributed_in_one_process_is_plain_sampling(models):
    "Without `accelerate launch`, sample_distributed samples every item here and gives the same tokens as sample."
    r = req(34, B=3, levels=(2,))
    a = S.sample_distributed(models, r, SampleConfig(decode=False))
    assert torch.equal(a.tokens[2], sample(models, r, SampleConfig(decode=False)).tokens[2])


def test_two_processes_split_the_songs(tmp_path):
    "accelerate launch, 2 CPU processes: each samples its share of 3 songs; both gather the same full result."
    accelerate_launch("sampling_ddp_check.py", "--out", tmp_path, timeout=240)
    got = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert got[0]["items"] == [0, 1] and got[1]["items"] == [2]
    for l in (2, 1):
        assert got[0]["tokens"][l].shape == (3, 34 * 4 ** (2 - l))
        assert torch.equal(got[0]["tokens"][l], got[1]["tokens"][l])
    single = got[0]["single_rank1_share"]  # rank 1's share sampled alone on one process gives the same tokens
    assert torch.equal(got[0]["tokens"][2][2:], single)


# ---- integration with checkpoints: label versions per level, Accelerate placement, one container ------------------
def test_level_metadata_reaches_each_level(models, monkeypatch):
    "Each level's prior tokenizes its own `level_metadata` (1b_lyrics: v3 ids at the top, v2 below); others use `metadata`."
    seen, orig = [], Prior.tokenize
    def spy(self, metas):
        seen.append((self.cfg.level, tuple(m.artist for m in metas), tuple(m.genres for m in metas)))
        return orig(self, metas)
    monkeypatch.setattr(Prior, "tokenize", spy)
    v2 = tuple(Metadata(artist=10 + i, genres=(3,), total_length=1) for i in range(2))
    v3 = tuple(Metadata(artist=20 + i, genres=(7,), total_length=1) for i in range(2))
    res = sample(models, SampleRequest(metadata=v2, level_metadata={2: v3}, seconds=secs(34), levels=(2, 1)),
                 SampleConfig(decode=False))
    assert {l for l, _, _ in seen} == {2, 1}
    assert all((a, g) == ((20, 21), ((7,), (7,))) for l, a, g in seen if l == 2)
    assert all((a, g) == ((10, 11), ((3,), (3,))) for l, a, g in seen if l == 1)
    only3 = sample(models, SampleRequest(metadata=v3, seconds=secs(34), levels=(2,)), SampleConfig(decode=False))
    assert torch.equal(res.tokens[2], only3.tokens[2])  # the top level is sampled as with `metadata=v3`


def test_level_metadata_is_validated_and_saved(models, tmp_path):
    m = lambda a: Metadata(artist=a, genres=(1, 2), total_length=1, lyrics="la")
    with pytest.raises(ValueError, match="disagree on the batch size"):
        SampleRequest(metadata=(m(1),), level_metadata={2: (m(2), m(3))})
    with pytest.raises(ValueError, match="level_metadata has level 5"): SampleRequest(level_metadata={5: m(1)})
    with pytest.raises(ValueError, match="one Metadata per batch item"): SampleRequest(level_metadata={2: (1, 2)})
    r = SampleRequest(level_metadata={2: (m(4), m(5)), 1: (m(6), m(7))}, seconds=secs(34), levels=(2,))
    assert r.batch_size == 2 and r.metadata_for(0) is None
    res = sample(models, r, SampleConfig(decode=False))
    back = load_result(save_result(res, tmp_path / "r"), models)
    assert back.request == res.request and back.request.level_metadata[1][1].genres == (1, 2)
    # an older result.json (no level_metadata key) still loads
    import json
    doc = json.loads((tmp_path / "r" / "result.json").read_text()); del doc["request"]["level_metadata"]
    (tmp_path / "r" / "result.json").write_text(json.dumps(doc))
    assert load_result(tmp_path / "r", models).request.level_metadata is None


def test_level_metadata_follows_batch_splits_and_compositions(models):
    m = lambda a: Metadata(artist=a, total_length=1)
    r = SampleRequest(metadata=(m(1), m(2), m(3)), level_metadata={2: (m(4), m(5), m(6))}, seconds=secs(34), levels=(2,))
    part = S._take(r, [1, 2])
    assert part.metadata == (m(2), m(3)) and part.level_metadata == {2: (m(5), m(6))}
    c = Composition(models, SampleRequest(metadata=m(1), level_metadata={2: m(9)}, seconds=1.0))
    seen = []
    for ev in c.extend_iter(3, secs(16)):
        if isinstance(ev, Finished): seen.append(ev.result.request)
    assert seen[0].level_metadata == {2: (m(9),) * 3} and seen[0].batch_size == 3


def test_a_checkpoints_jukebox_drives_the_engine(models, tmp_path):
    "`load_model`'s `Jukebox` goes straight into sample / Composition / result helpers: the same tokens as `Jukebox.tiny()`'s."
    jb = Jukebox(models.vqvae, models.priors, models.name)
    cfg = SampleConfig(decode=False)
    a, b = sample(jb, req(34, levels=(2,)), cfg), sample(models, req(34, levels=(2,)), cfg)
    assert torch.equal(a.tokens[2], b.tokens[2]) and a.model == "tiny"
    up = sample(jb, upsample_request(jb, a, (1,)), cfg)
    assert torch.equal(up.tokens[2], a.tokens[2]) and up.tokens[1].shape == (2, 136)
    c = Composition(jb, SampleRequest(metadata=Metadata(artist=2, total_length=1), seconds=1.0))
    assert len(c.extend(1, secs(16))) == 1
    with pytest.raises(TypeError, match="expected a Jukebox"): sample(object(), req(34), cfg)
    with pytest.raises(ValueError, match="models level 0"): sample(Jukebox(models.vqvae, {1: models.priors[0]}), req(34), cfg)


def test_accelerate_placed_prior_is_sampled_in_place(tmp_path):
    "A prior spilled to disk by `place_with_accelerate` is not moved; it samples the tokens of an unplaced copy."
    import copy
    from jukebox_nb.checkpoints import place_with_accelerate
    torch.set_num_threads(1)
    ref = Jukebox.tiny(seed=1)
    placed = {l: copy.deepcopy(p) for l, p in ref.priors.items()}
    for l in (2, 1):
        size = sum(t.numel() * 4 for t in placed[l].parameters())
        placed[l] = place_with_accelerate(placed[l], max_memory={"cpu": int(size * 0.9)}, offload_dir=tmp_path / f"off{l}")
        assert "disk" in set(placed[l].hf_device_map.values())
    jb = Jukebox(ref.vqvae, placed, "tiny")
    r = req(34, levels=(2, 1))
    for step in ("fast", "reference"):
        cfg = SampleConfig(device="cpu", decode=False, decode_step=step)
        a, b = sample(jb, r, cfg), sample(ref, r, cfg)
        for l in (2, 1): assert torch.equal(a.tokens[l], b.tokens[l]), (step, l)
    for l in (2, 1):  # still Accelerate's: offloaded weights are back on the meta device, the hooks in place
        assert any(q.is_meta for q in placed[l].parameters()) and hasattr(placed[l], "hf_device_map")
    with pytest.raises(ValueError, match=r"placed by Accelerate on \['cpu'\]; sample with SampleConfig\(device='cpu'\)"):
        with S._placed(placed[2], torch.device("cuda"), True): pass
    assert any(q.is_meta for q in placed[2].parameters())  # the weights loaded for the check were dropped again
    split = copy.deepcopy(ref.priors[1]); split.hf_device_map = {"y_emb": 0, "prior": 1}
    with pytest.raises(NotImplementedError, match="split over devices \\[0, 1\\]"):
        with S._placed(split, torch.device("cuda"), True): pass


def test_compiled_decode_step_matches_and_samples(models):
    "SampleConfig(compile=True): the layer loop through torch.compile (dynamic shapes) gives the default step's logits and samples."
    p, r = models.priors[2], req(40, B=2, levels=(2,))
    z = torch.randint(p.cfg.bins, (2, 12))
    with torch.inference_mode():
        cond = _cond(p, 2)
        for step in (DecodeStep(p), DecodeStep(p, compile=True)):  # logits compared, not tokens: fused kernels round differently
            st = p.start(cond, 2)
            got = [step.prefill(st, z[:, :4])] + [step(z[:, i], st) for i in range(4, 12)]
            if not step.compiled: want = got
        assert step.compiled and not step.scripted
        for g, w in zip(got, want): torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    res = sample(models, r, SampleConfig(decode=False, compile=True))
    assert res.complete and res.tokens[2].shape == (2, 40) and 0 <= int(res.tokens[2].min()) <= int(res.tokens[2].max()) < p.cfg.bins
    with pytest.raises(ValueError, match="decode_step='fast'"): SampleConfig(compile=True, decode_step="reference")


@pytest.mark.parametrize("name", ["tiny", "tiny_lyrics", "tiny_single", "tiny_upsampler"])
def test_prior_loaded_in_bfloat16_samples_on_cpu(name):
    "A prior whose weights are bf16 (load_model(dtype=torch.bfloat16)) gives the bf16 step's logits of its float32 original."
    torch.manual_seed(0)
    p = Prior(PriorConfig.preset(name)).eval()
    with torch.no_grad():
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    z = torch.randint(p.cfg.bins, (2, 10))
    def logits(prior):
        step = DecodeStep(prior, torch.bfloat16)
        with torch.inference_mode():
            st = prior.start(_cond(prior, 2), 2, torch.bfloat16)
            return step.prefill(st, z[:, :9]).float(), step(z[:, 9], st).float()
    torch.manual_seed(1); want = logits(p)
    torch.manual_seed(1); got = logits(p.to(torch.bfloat16))  # same conditioning draws (the upsampler's codes)
    for g, w in zip(got, want): torch.testing.assert_close(g, w, atol=3e-2, rtol=3e-2)


class ToyCodec:
    "A codec that is not a VQ-VAE (`vqvae.Codec`): a code is a pitch, decoded as a tone; encoding reads the loudness."
    levels, l_bins, hop_lengths, sample_rate = 3, 32, (8, 32, 128), SR

    def encode(self, audio, levels=None):
        x = torch.as_tensor(audio).reshape(audio.shape[0], -1)
        lv = [levels] if isinstance(levels, int) else list(range(3)) if levels is None else list(levels)
        codes = [(x[:, :x.shape[1] // h * h].reshape(x.shape[0], -1, h).abs().mean(-1) * 31).long().clamp(0, 31) for h in
                 (self.hop_lengths[l] for l in lv)]
        return codes[0] if isinstance(levels, int) else codes

    def decode(self, codes, level):
        f = 110.0 * 2 ** (codes.float() / 12).repeat_interleave(self.hop_lengths[level], 1)  # [B, T] Hz
        return (0.3 * torch.sin(2 * torch.pi * torch.cumsum(f / SR, 1)))[:, None]

    def to(self, device): return self


def test_sampling_through_another_codec(models):
    "The engine needs only the `Codec` interface: a toy codec with the tiny priors samples, primes and decodes."
    from jukebox_nb.vqvae import Codec
    codec = ToyCodec()
    assert isinstance(codec, Codec) and isinstance(models.vqvae, Codec)
    toy = Jukebox(codec, models.priors, "toy")
    r = req(40, levels=(2, 1), prime_audio=np.full(SR // 8, 0.5, np.float32), prime_seconds=secs(16))
    res = sample(toy, r, SampleConfig(max_batch_size=2))
    assert res.tokens[2].shape == (2, 40) and torch.all(res.tokens[2][:, :16] == 15)  # the primed codes: loudness 0.5
    assert res.audio[2].shape == (2, 40 * 128) and res.audio[1].shape == (2, 160 * 32)
    with pytest.raises(ValueError, match="prior has 32 codes, the VQ-VAE 64"):
        Jukebox(type("Wide", (ToyCodec,), {"l_bins": 64})(), models.priors)


# ---- lyrics the model cannot read as given ------------------------------------------------------------
def _first_events(models, r):
    "The events sample_iter yields before its first level starts (its notices), without sampling anything."
    gen, evs = sample_iter(models, r, SampleConfig(decode=False)), []
    for e in gen:
        if isinstance(e, LevelStarted): break
        evs.append(e)
    gen.close()
    return evs


def test_lyrics_to_a_model_without_lyric_conditioning_warn(models):
    r = SampleRequest(metadata=[Metadata(total_length=SR * 10, lyrics="Here comes the sun")], seconds=secs(34))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told once, as a Notice (sample() without on_event turns it into a warning)
        evs = _first_events(models, r)
    assert [e.message for e in evs if isinstance(e, Notice)] == [
        "lyrics 'Here comes the sun' are ignored: this model is not conditioned on lyrics (5b_lyrics and 1b_lyrics are)"]


def test_lyrics_in_other_scripts_are_transliterated_and_the_user_is_told(models):
    top = Prior(PriorConfig.preset("tiny_lyrics", bins=models.vqvae.cfg.l_bins)).eval()
    lyr = Jukebox(models.vqvae, {**models.priors, 2: top}, "tiny_lyrics")
    m = Metadata(artist=1, genres=(1,), total_length=SR * 10, lyrics="Пусть бегут 🎵")
    from jukebox_nb.conditioning import LyricTokenizer
    ids = top.tokenize([m])[0, -top.cfg.n_tokens:].tolist()
    assert ids != [0] * 6 + LyricTokenizer().encode("  ")  # not reduced to two spaces (the fold without unidecode)
    assert LyricTokenizer().decode(ids) == "Pust' be"  # the first 8 characters of the transliterated text (offset 0)
    evs = _first_events(lyr, SampleRequest(metadata=[m], seconds=secs(34)))
    assert any(isinstance(e, Notice) and re.search(r"transliterated to ASCII \(П→P, у→u.*and 1 dropped \('🎵'\); the model reads \"Pust' begut \"",
                                                   e.message) for e in evs)
