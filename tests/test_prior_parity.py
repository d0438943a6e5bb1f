"""Parity of `jukebox_nb.prior` with the official Jukebox code (openai-jukebox.md §11).

Fixtures (copied/extracted from ../shared/reference/):
* `oracle_prior_{top_sep,top_single,up1,up0}_state_dict.pth`: small priors with the releases' structure
  and key names (top_sep ~ 5b_lyrics, top_single ~ 1b_lyrics, up1/up0 ~ the upsamplers), weights perturbed
  so that zero-initialised paths are live;
* `oracle_prior_tensors.pth`: per prior the codes `z`, labels `y`, upper codes `z_cond0`, the official
  conditioning tensors, teacher-forced logits `preds`, sampled tokens and per-step sampling logits;
* `oracle_prior_summary.json`: the official per-item losses;
* `oracle_prior_manifests.json`: every key/shape of the released prior checkpoints.
The last tests check that bad input gets an error naming what was expected.
"""
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from jukebox_nb.conditioning import Metadata
from jukebox_nb.prior import Prior, PriorConfig

FIX = Path(__file__).parent / "fixtures"
ORACLES = ("top_sep", "top_single", "up1", "up0")

# The oracle hparams (openai-oracle/hparams.json) as overrides of our release presets: same structure,
# label sets and vocabularies; small n_ctx, codebook, widths and depths.
_SMALL = dict(n_ctx=256, bins=128, width=64, blocks=16)
ORACLE_CONFIGS = {
    "top_sep": ("5b_lyrics", dict(_SMALL, depth=20, heads=2, n_tokens=32, prime_width=32, prime_depth=3, prime_heads=1,
                                  prime_blocks=4)),
    "top_single": ("1b_lyrics", dict(_SMALL, depth=16, heads=2, n_tokens=32)),
    "up1": ("upsampler_level_1", dict(_SMALL, depth=6, cond_width=32, cond_depth=4)),
    "up0": ("upsampler_level_0", dict(_SMALL, depth=6, cond_width=32, cond_depth=4)),
}
RELEASES = {"5b": "5b_prior_level_2", "5b_lyrics": "5b_lyrics_prior_level_2", "1b_lyrics": "1b_lyrics_prior_level_2",
            "upsampler_level_1": "prior_level_1", "upsampler_level_0": "prior_level_0"}


@pytest.fixture(scope="module")
def tensors():
    return torch.load(FIX / "oracle_prior_tensors.pth")


@pytest.fixture(scope="module")
def summary():
    return json.loads((FIX / "oracle_prior_summary.json").read_text())


def load_oracle(name: str) -> Prior:
    preset, over = ORACLE_CONFIGS[name]
    sd = torch.load(FIX / f"oracle_prior_{name}_state_dict.pth")
    return Prior.from_state_dict(PriorConfig.preset(preset, **over), sd).eval()


@pytest.mark.parametrize("preset", list(RELEASES))
def test_release_state_dict_matches_manifest(preset):
    "Our meta-device model has exactly the keys and shapes of the released checkpoint."
    manifest = json.loads((FIX / "oracle_prior_manifests.json").read_text())[RELEASES[preset]]
    with torch.device("meta"):
        sd = Prior(PriorConfig.preset(preset)).state_dict()
    ours = {k: list(v.shape) for k, v in sd.items()}
    assert sorted(set(ours) - set(manifest)) == [] and sorted(set(manifest) - set(ours)) == []
    assert {k: s for k, s in ours.items() if manifest[k] != s} == {}


@pytest.mark.parametrize("name", ["top_single", "up0"])
def test_loading_adopts_tensors_without_copies(name):
    "from_state_dict adopts the checkpoint's tensors; the tied x_out/x_emb pair stays one tensor."
    preset, over = ORACLE_CONFIGS[name]
    sd = torch.load(FIX / f"oracle_prior_{name}_state_dict.pth")
    p = Prior.from_state_dict(PriorConfig.preset(preset, **over), sd)
    assert p.prior.x_emb.weight.data_ptr() == sd["prior.x_emb.weight"].data_ptr()
    assert p.prior.transformer._attn_mods[0].attn.c_attn.w.data_ptr() == \
        sd["prior.transformer._attn_mods.0.attn.c_attn.w"].data_ptr()
    assert not hasattr(p.prior, "x_out")
    assert p.state_dict()["prior.x_out.weight"].data_ptr() == p.prior.x_emb.weight.data_ptr()
    with torch.device("meta"):
        big = Prior(PriorConfig.preset("1b_lyrics"))
    assert sum(q.numel() for q in big.parameters()) == 942_643_200  # manifests/_summary.json unique params


@pytest.mark.parametrize("name", ORACLES)
def test_oracle_state_dict_loads_strictly(name):
    p = load_oracle(name)
    sd = torch.load(FIX / f"oracle_prior_{name}_state_dict.pth")
    assert sorted(p.state_dict()) == sorted(sd)


@pytest.mark.parametrize("name", ORACLES)
def test_conditioning_matches_oracle(name, tensors):
    p = load_oracle(name)
    with torch.no_grad():
        c = p.condition(tensors[f"{name}/y"], tensors.get(f"{name}/z_cond0"))
    P = p.cfg.n_tokens if p.cfg.lyrics == "single" else 0
    torch.testing.assert_close(c.y_cond, tensors[f"{name}/y_cond"], atol=1e-5, rtol=0)
    torch.testing.assert_close(c.x_cond[:, P:], tensors[f"{name}/x_cond"], atol=1e-5, rtol=0)
    if p.cfg.lyrics == "single": assert c.x_cond[:, :P].abs().max() == 0
    if f"{name}/encoder_kv" in tensors:
        torch.testing.assert_close(c.encoder_kv, tensors[f"{name}/encoder_kv"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ORACLES)
def test_teacher_forced_logits_and_losses(name, tensors, summary):
    p = load_oracle(name)
    with torch.no_grad():
        out = p(tensors[f"{name}/z"], tensors[f"{name}/y"], tensors.get(f"{name}/z_cond0"))
    torch.testing.assert_close(out.logits, tensors[f"{name}/preds"], atol=1e-4, rtol=0)
    ref = summary[f"{name}/forward"]
    for ours, key in ((out.loss_per_item, "loss_per_item"), (out.gen_loss, "gen_loss_per_item"),
                      (out.prime_loss, "prime_loss_per_item")):
        torch.testing.assert_close(ours, torch.tensor(ref[key]), atol=1e-4, rtol=0)


def _cached_logits(p: Prior, name: str, tensors, chunks) -> torch.Tensor:
    "Per-step logits of the oracle's sampled sequence through our KV-cached path, prefix fed in `chunks`."
    toks = tensors[f"{name}/sample_tokens"]
    cond = p.condition(tensors[f"{name}/y"], tensors.get(f"{name}/z_cond0"))
    caches = p.prior.new_caches(toks.shape[0])
    # the official sampler draws over the whole merged vocabulary of a single-sequence prior, so its music
    # positions may hold lyric ids: feed its raw sequence to the autoregressive model
    ext = lambda x: p.prior.extend(caches, x, cond.x_cond, cond.y_cond, cond.encoder_kv)
    out, i = [ext(toks[:, :0])], 0
    for n in chunks:
        out.append(ext(toks[:, i:i + n])); i += n
    out += [ext(toks[:, j:j + 1]) for j in range(i, toks.shape[1] - 1)]
    return torch.cat(out, 1)


@pytest.mark.parametrize("name", ORACLES)
@pytest.mark.parametrize("chunks", [[], [5, 16, 16, 1, 40]], ids=["token_by_token", "chunked_prefix"])
def test_sampling_logits_through_kv_cache(name, chunks, tensors):
    p = load_oracle(name)
    with torch.no_grad():
        logits = _cached_logits(p, name, tensors, chunks)
    torch.testing.assert_close(logits, tensors[f"{name}/sample_preds"], atol=1e-4, rtol=0)


def test_music_api_matches_raw_path(tensors):
    "Prior.extend on music codes gives the music slice of the raw logits (single-sequence prior)."
    p = load_oracle("top_single")
    z, y = tensors["top_sep/z"], tensors["top_single/y"]  # any in-range music codes
    with torch.no_grad():
        full = p(z, y).logits
        st = p.start(p.condition(y))
        inc = torch.cat([p.extend(st, z[:, :10])] + [p.extend(st, z[:, i:i + 1]) for i in range(10, 255)], 1)
    torch.testing.assert_close(inc, full[:, 32:, 79:], atol=1e-4, rtol=0)


# ---- bad input: clear errors naming what was expected ------------------------------------------
@pytest.fixture(scope="module")
def tiny_priors():
    torch.manual_seed(0)
    return {n: Prior(PriorConfig.preset(n)).eval() for n in ("tiny", "tiny_lyrics", "tiny_upsampler")}


@settings(max_examples=25, deadline=None)
@given(bad=st.one_of(st.integers(-1000, -1), st.integers(64, 10_000)), pos=st.integers(0, 31))
def test_codes_out_of_range_are_named(tiny_priors, bad, pos):
    p = tiny_priors["tiny"]
    z = torch.zeros(1, 32, dtype=torch.long)
    z[0, pos] = bad
    y = p.tokenize([Metadata(total_length=44100 * 30)])
    with pytest.raises(ValueError, match=r"level 2 codes out of range.*expected 0 ≤ id < 64"):
        p(z, y)


@settings(max_examples=25, deadline=None)
@given(artist=st.one_of(st.integers(-50, -1), st.integers(4111, 100_000)))
def test_unknown_artist_is_named(tiny_priors, artist):
    p = tiny_priors["tiny"]
    with pytest.raises(ValueError, match=f"unknown artist id {artist}"):
        p.tokenize([Metadata(artist=artist, total_length=44100 * 30)])


def test_missing_or_misshaped_conditioning_is_named(tiny_priors):
    top, lyr, up = tiny_priors["tiny"], tiny_priors["tiny_lyrics"], tiny_priors["tiny_upsampler"]
    z = torch.zeros(1, 32, dtype=torch.long)
    meta = [Metadata(total_length=44100 * 30)]
    with pytest.raises(ValueError, match="conditioned on metadata"): top(z)
    with pytest.raises(ValueError, match=r"y should have shape \(N, 17\)"): lyr(z, top.tokenize(meta))
    with pytest.raises(ValueError, match="needs z_cond: the level 2 codes"): up(z, up.tokenize(meta))
    with pytest.raises(ValueError, match="expects level 2 codes of length 8"): up(z, up.tokenize(meta), z)
    with pytest.raises(ValueError, match="the top-level prior takes no z_cond"): top(z, top.tokenize(meta), z[:, :8])
    with pytest.raises(ValueError, match=r"total_length \(raw samples\).*outside the range"):
        top(z, top.tokenize([Metadata(total_length=30)]))  # seconds instead of samples (official issue #207)
    with pytest.raises(ValueError, match="window holds 8"):
        lyr.tokenize([Metadata(total_length=44100 * 30, lyric_tokens=(1,) * 9)])
