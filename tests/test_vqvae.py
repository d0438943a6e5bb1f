"""VQ-VAE behaviour beyond the notebook examples: config round trips, bad input, checkpoints, training."""
import io
import json

import pytest
import torch
from hypothesis import given, settings, strategies as st

from jukebox_nb.vqvae import VQVAE, VQVAEConfig, VQVAE_PRESETS, measure_bandwidth

BW = dict(l2=0.01, l1=0.1, spec=20.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads; on a loaded 2-core machine two threads per op can make them
    40x slower (each op waits for a descheduled thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(**kw) -> VQVAE:
    return VQVAE(VQVAEConfig.preset("tiny", bandwidth=BW, **kw))


@settings(max_examples=40, deadline=None)
@given(preset=st.sampled_from(sorted(VQVAE_PRESETS)), width=st.integers(1, 64), depth=st.integers(1, 8),
       l_bins=st.integers(1, 4096), mu=st.floats(0.0, 0.999), cycle=st.one_of(st.none(), st.integers(1, 8)),
       bw=st.one_of(st.none(), st.fixed_dictionaries({k: st.floats(1e-6, 1e3) for k in ("l2", "l1", "spec")})))
def test_config_json_round_trip(preset, width, depth, l_bins, mu, cycle, bw):
    cfg = VQVAEConfig.preset(preset, width=width, depth=depth, l_bins=l_bins, mu=mu, dilation_cycle=cycle, bandwidth=bw)
    assert VQVAEConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.bottleneck.bins == l_bins and cfg.hop_lengths == VQVAEConfig.preset(preset).hop_lengths


def test_from_openai_refuses_unsupported_options():
    with pytest.raises(ValueError, match="not supported here: {'loss_fn': 'l2'}"):
        VQVAEConfig.from_openai({"loss_fn": "l2", "width": 8})
    assert VQVAEConfig.from_openai({"width": 8, "hvqvae_multipliers": [1, 1, 1]}).multipliers == (1, 1, 1)


def test_encode_runs_only_the_requested_encoders():
    model = tiny().eval()
    calls = []
    for l, enc in enumerate(model.encoders): enc.register_forward_hook(lambda *a, l=l: calls.append(l))
    model.encode(torch.randn(1, 1, 1024), levels=1)
    assert calls == [1]
    model.encode(torch.randn(1, 1, 1024), levels=(0, 2))
    assert calls == [1, 0, 2]


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.lists(st.integers(0, 3), max_size=3), st.integers(0, 3000)).map(lambda p: [*p[0], p[1]]),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.int16]),
       poison=st.sampled_from([None, float("nan"), float("inf")]), level=st.integers(-1, 3))
def test_bad_audio_raises_value_error_or_encodes(shape, dtype, poison, level):
    """Any input either encodes to [B, T // hop] codes or raises a ValueError; never another exception."""
    model = _MODEL
    x = torch.zeros(shape, dtype=dtype) if dtype == torch.int16 else 0.1 * torch.randn(shape, dtype=dtype)
    if poison is not None and x.numel() and x.is_floating_point(): x.view(-1)[x.numel() // 2] = poison
    try:
        codes = model.encode(x, levels=level)
    except ValueError as e:
        assert str(e)
        return
    hop = model.cfg.hop_lengths[level]
    assert codes.shape == (x.shape[0], x.shape[-1] // hop) and x.is_floating_point() and bool(torch.isfinite(x).all())


_MODEL = tiny().eval()


def _step(model, opt, x):
    out = model(x)
    opt.zero_grad(); out.loss.backward(); opt.step()
    return out


def test_checkpoint_resumes_training_exactly():
    """Codebook statistics are buffers: a saved and reloaded model continues exactly like the original."""
    torch.manual_seed(0)
    x = 0.1 * torch.randn(2, 1, 2048)
    a = tiny().train(); opt_a = torch.optim.Adam(a.parameters(), 1e-3)
    _step(a, opt_a, x)
    buf = io.BytesIO(); torch.save({"model": a.state_dict(), "opt": opt_a.state_dict()}, buf); buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    b = tiny().train(); b.load_state_dict(ck["model"])
    opt_b = torch.optim.Adam(b.parameters(), 1e-3); opt_b.load_state_dict(ck["opt"])
    for blk_a, blk_b in zip(a.bottleneck.level_blocks, b.bottleneck.level_blocks):
        assert bool(blk_b.initted) and torch.equal(blk_a.k_elem, blk_b.k_elem)
    torch.manual_seed(1); out_a = _step(a, opt_a, x)
    torch.manual_seed(1); out_b = _step(b, opt_b, x)
    assert torch.equal(out_a.loss, out_b.loss)
    for blk_a, blk_b in zip(a.bottleneck.level_blocks, b.bottleneck.level_blocks):
        assert torch.equal(blk_a.k, blk_b.k) and torch.equal(blk_a.k_sum, blk_b.k_sum)


def test_other_config_checkpoint_names_mismatch():
    small, wide = tiny(), tiny(width=8)
    with pytest.raises(ValueError, match=r"encoders\.0\.level_blocks\.0\.model\.0\.0\.weight: checkpoint \[16, 1, 4\] vs model \[8, 1, 4\]"):
        small.load_state_dict(wide.state_dict())
    with pytest.raises(ValueError, match=r"unexpected: extra\.weight"):
        small.load_state_dict({**small.state_dict(), "extra.weight": torch.zeros(1)})


def test_training_reduces_loss_on_a_tone():
    torch.manual_seed(0)
    t = torch.arange(2048) / 44100
    x = (0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.2 * torch.sin(2 * torch.pi * 660 * t))[None, None].repeat(2, 1, 1)
    model = VQVAE(VQVAEConfig.preset("tiny", bandwidth=measure_bandwidth([x]))).train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = [float(_step(model, opt, x).metrics["loss"]) for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_inference_outputs_work_with_autograd():
    """encode/decode run under inference_mode but return ordinary tensors (a prior can embed the codes)."""
    model = tiny().eval()
    codes = model.encode(torch.randn(1, 1, 1024), levels=0)
    emb = torch.nn.Embedding(32, 4)
    emb(codes).sum().backward()
    assert emb.weight.grad is not None
    audio = model.decode(codes, 0)
    (audio * torch.ones(1, requires_grad=True)).sum().backward()


ABLATIONS = {"no_restarts": dict(restarts=False), "no_bottleneck": dict(use_bottleneck=False),
             "per_level_thresholds": dict(revival_threshold=(2.0, 0.5, 0.1)), "hierarchical": {}}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_variants_train_resume_and_score(tmp_path, name):
    """The paper-ablation variants (nbs/paper/vqvae_*.ipynb) train through `training.train`, resume exactly from a
    checkpoint, and are scored per level by `level_metrics`."""
    import math
    from jukebox_nb.core import set_seed
    from jukebox_nb.training import ToneDataset, TrainConfig, train
    from jukebox_nb.vqvae import HierarchicalVQVAE, level_metrics
    ds = ToneDataset(n=8, length=2048)
    cfg = VQVAEConfig.preset("tiny", bandwidth=measure_bandwidth(ds[i]["audio"][None] for i in range(8)), **ABLATIONS[name])
    cls = HierarchicalVQVAE if name == "hierarchical" else VQVAE

    def go(out, total):
        set_seed(0)
        tc = TrainConfig(total_steps=total, batch_size=2, warmup_steps=1, ckpt_every=2, log_every=1, out_dir=str(tmp_path / out))
        return train(lambda all_reduce: cls(cfg, all_reduce=all_reduce), ds, tc, progress=False)

    straight, first, rest = go("a", 4), go("b", 2), go("b", 4)
    assert [r["loss"] for r in first.history + rest.history] == pytest.approx([r["loss"] for r in straight.history], rel=1e-5)
    if name == "no_restarts": assert all(r[f"restarted/{l}"] == 0 for r in straight.history for l in range(3))
    if name == "no_bottleneck": assert "used/0" not in straight.history[0] and straight.history[0]["commit_loss"] == 0
    if name == "per_level_thresholds":
        assert [b.threshold for b in straight.model.bottleneck.level_blocks] == [2.0, 0.5, 0.1]
    m = level_metrics(straight.model, torch.stack([ds[i]["audio"] for i in range(3)]))
    assert sorted(m) == [0, 1, 2] and all(math.isfinite(v["spectral_convergence_db"]) for v in m.values())
    assert ("codes_used" in m[2]) == (name != "no_bottleneck")


# --- chunked (streaming) encode / decode: equal to one pass at every seam -----------------------------------------

def _positive_double_tiny() -> VQVAE:
    "A tiny float64 model with positive weights: every tap of the receptive field changes the output measurably."
    m = VQVAE(VQVAEConfig.preset("tiny")).eval().double()
    with torch.no_grad():
        for p in m.parameters(): p.abs_()
    return m


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("chunk,piece", [(1, None), (2, 777), (5, 128), (33, 1), (10_000, None)])
def test_chunked_matches_one_pass(level, chunk, piece):
    from jukebox_nb.vqvae import decode_chunked, encode_chunked
    torch.manual_seed(level)
    m = VQVAE(VQVAEConfig.preset("tiny")).eval().double()
    for blk in m.bottleneck.level_blocks: blk.k.normal_()  # spread codes so a wrong seam changes them
    x = torch.randn(2, 1, 128 * 24, dtype=torch.float64) * 0.3
    codes = m.encode(x, levels=level)
    assert torch.equal(encode_chunked(m, x, level, chunk, piece=piece), codes)
    y = m.decode(codes, level)
    torch.testing.assert_close(decode_chunked(m, codes, level, chunk, piece=piece and max(1, piece // 8)), y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_chunk_context_is_tight(level):
    "The computed context reproduces one pass exactly; one frame less on either side leaves the seams wrong."
    from jukebox_nb.vqvae import OverlapSave, chunk_context
    m = _positive_double_tiny(); hop = m.cfg.hop_lengths[level]
    x = torch.rand(1, 1, 128 * 24, dtype=torch.float64)
    c = torch.rand(1, m.cfg.emb_width, 128 * 24 // hop, dtype=torch.float64)
    for stack, inp, frame, (l, r) in [(m.encoders[level], x, hop, chunk_context(m, level)["encode"]),
                                      (m.decoders[level], c, 1, chunk_context(m, level)["decode"])]:
        with torch.no_grad():
            ref = stack(inp)
            def rel_err(ctx):
                s = OverlapSave(stack, frame, *ctx, chunk=3)
                return float((torch.cat(s.push(inp) + s.close(), -1) - ref).abs().max() / ref.abs().max())
            assert rel_err((l, r)) < 1e-13
            assert rel_err((l - 1, r)) > 1e-9 and rel_err((l, r - 1)) > 1e-9, (type(stack).__name__, l, r)


def test_overlap_save_rejects_a_partial_frame():
    from jukebox_nb.vqvae import OverlapSave
    s = OverlapSave(lambda x: x, 8, 0, 0, 4)
    s.push(torch.zeros(1, 1, 12))
    with pytest.raises(ValueError, match="multiple of 8"): s.close()
