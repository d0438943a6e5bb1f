"Lyric alignment: one layer's attention weights, `Prior.alignment`, `align_song`, and the studio's alignment view."
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from jukebox_nb.attention import FactoredAttention
from jukebox_nb.conditioning import LyricTokenizer, Metadata
from jukebox_nb.prior import Prior, PriorConfig, _window_starts, align_song
from jukebox_nb.transformer import attn_schedule

SONGS = [Metadata(artist=3, genres=(1,), total_length=44100 * 30, offset=44100 * 4, lyrics="la la la, hey"),
         Metadata(artist=1, genres=(2,), total_length=44100 * 30, offset=0, lyrics="Oh my darling, clementine"),
         Metadata(artist=2, genres=(), total_length=44100 * 30, offset=44100 * 20, lyrics="x")]


def lively(name: str, seed: int = 0, **kw) -> Prior:
    "A tiny prior with larger random projections (the enc-dec ones start at zero), so attention is far from uniform."
    torch.manual_seed(seed)
    p = Prior(PriorConfig.preset(name, **kw)).eval()
    for n, q in p.named_parameters():
        if n.endswith(".w"): torch.nn.init.normal_(q, std=0.3)
    return p


def dense_weights(p: Prior, z, y, layer: int):
    """All heads' softmax (N, H, seq_len, K) of `layer`, computed from scratch: embeddings, the earlier blocks
    run one by one, then the layer's scores by einsum with an explicit mask (prime: causal and < prime_keys)."""
    c, tr = p.cfg, p.prior
    cond = p.condition(y)
    x = z if c.lyrics != "single" else torch.cat([cond.lyrics, z + c.n_vocab], 1)
    with torch.no_grad():
        h = torch.cat([cond.y_cond, tr.x_emb(x)[:, :-1]], 1) + tr.pos_emb.pos_emb[:x.shape[1]] + cond.x_cond
        for b in tr.transformer._attn_mods[:layer]: h = b(h, cond.encoder_kv)
        blk = tr.transformer._attn_mods[layer]
        a, hn = blk.attn, blk.ln_0(h)
        H, hd = a.n_head, a.n_state // a.n_head
        q = hn @ a.c_attn.w[:, :a.n_state] + a.c_attn.b[:a.n_state]
        if c.lyrics == "separate":
            k = cond.encoder_kv @ a.c_enc_kv.w[:, :a.n_state] + a.c_enc_kv.b[:a.n_state]
            mask = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool)
        else:
            k = hn @ a.c_attn.w[:, a.n_state:2 * a.n_state] + a.c_attn.b[a.n_state:2 * a.n_state]
            qi, ki = torch.arange(q.shape[1])[:, None], torch.arange(k.shape[1])[None]
            mask = (ki <= qi) & (ki < c.prime_keys)
        s = torch.einsum("nqhd,nkhd->nhqk", q.view(*q.shape[:2], H, hd), k.view(*k.shape[:2], H, hd)) / np.sqrt(hd)
        return s.masked_fill(~mask, float("-inf")).softmax(-1)


@pytest.mark.parametrize("name", ["tiny_lyrics", "tiny_single"])
@pytest.mark.parametrize("head", [0, 1])
def test_alignment_equals_dense_computation(name, head):
    p = lively(name)
    c = p.cfg
    y = p.tokenize(SONGS)
    z = torch.randint(0, c.bins, (3, c.n_ctx))
    layer, _ = c.alignment_layer_head()
    w = p.alignment(z, y, head=head)
    assert w.shape == (3, c.n_ctx, c.n_tokens) and w.dtype == torch.float32
    full = dense_weights(p, z, y, layer)[:, head]
    want = full if c.lyrics == "separate" else full[:, c.n_tokens:, :c.n_tokens]
    torch.testing.assert_close(w, want, atol=1e-5, rtol=1e-4)
    assert w.std() > 1e-3  # not a uniform softmax: the check has teeth
    rows = w.sum(-1)
    if c.lyrics == "separate":
        torch.testing.assert_close(rows, torch.ones_like(rows))  # a softmax over the lyric keys
    else:  # prime keys cover the lyrics plus the first music positions: lyric part + the rest = 1
        rest = full[:, c.n_tokens:, c.n_tokens:].sum(-1)
        torch.testing.assert_close(rows + rest, torch.ones_like(rows))
        assert bool((rows > 0).all()) and bool((rest[:, :c.prime_keys - c.n_tokens] > 0).any())


def test_alignment_leaves_the_model_as_it_was():
    p = lively("tiny_lyrics")
    y = p.tokenize(SONGS[:2]); z = torch.randint(0, 64, (2, 32))
    before = p(z, y).logits
    layer, _ = p.cfg.alignment_layer_head()
    attn = p.prior.transformer._attn_mods[layer].attn
    p.alignment(z, y)
    assert attn.record is False and attn.weights is None
    assert all(not b._forward_hooks for b in p.prior.transformer._attn_mods)
    torch.testing.assert_close(p(z, y).logits, before, atol=0, rtol=0)
    with pytest.raises(ValueError, match="out of range"): p.alignment(z + 64, y)
    assert attn.record is False and not p.prior.transformer._attn_mods[layer]._forward_hooks


def test_record_flag_keeps_the_output_and_only_costs_when_on():
    torch.manual_seed(0)
    for pattern in ("enc_dec", "prime", "transpose_block", "prev_block"):
        attn = FactoredAttention(16, 24, 8, 2, pattern, blocks=4, prime_len=9, n_enc=5).eval()
        for q in attn.parameters(): torch.nn.init.normal_(q, std=0.3)
        x, e = torch.randn(2, 24, 16), torch.randn(2, 5, 16)
        e = e if pattern == "enc_dec" else None
        out = attn(x, e)
        assert attn.weights is None  # not asked: nothing kept
        attn.record = True
        torch.testing.assert_close(attn(x, e), out)
        w = attn.weights
        assert w.shape == (2, 2, 24, {"enc_dec": 5, "prime": 9}.get(pattern, 24))
        # the weights reproduce the layer's output
        _, k, v = attn.qkv(x, e)
        v = v[:, :w.shape[-1]].view(2, -1, 2, 4).transpose(1, 2)
        a = (w @ v).transpose(1, 2).reshape(2, 24, 8)
        torch.testing.assert_close(attn.c_proj(a), out, atol=1e-5, rtol=1e-4)


def test_short_window_is_the_prefix_of_the_full_one():
    for name in ("tiny_lyrics", "tiny_single"):
        p = lively(name, seed=1)
        y = p.tokenize(SONGS[:2]); z = torch.randint(0, 64, (2, 32))
        torch.testing.assert_close(p.alignment(z[:, :11], y), p.alignment(z, y)[:, :11])


def test_explicit_layer_and_release_defaults():
    assert PriorConfig.preset("5b_lyrics").alignment_layer_head() == (68, 2)
    assert PriorConfig.preset("1b_lyrics").alignment_layer_head() == (63, 0)
    assert attn_schedule(10, 79)[68] == "enc_dec" and attn_schedule(12, 72)[63] == "prime"
    # a smaller model of the same family falls back to its last enc-dec / prime layer (the oracle's 18 and 15)
    assert PriorConfig.preset("5b_lyrics", depth=20, heads=2).alignment_layer_head() == (18, 0)
    assert PriorConfig.preset("1b_lyrics", depth=16).alignment_layer_head() == (15, 0)
    assert PriorConfig.preset("1b_lyrics", depth=72, heads=2, width=64).alignment_layer_head() == (63, 0)  # same layers: kept
    deeper = PriorConfig.preset("tiny_lyrics", depth=20)  # enc-dec layers 9 and 19
    assert deeper.alignment_layer_head() == (19, 0)
    assert PriorConfig.from_dict({**deeper.to_dict(), "alignment_layer": 9}).alignment_layer_head() == (9, 0)
    p = lively("tiny_lyrics", depth=20)
    y = p.tokenize(SONGS[:1]); z = torch.randint(0, 64, (1, 32))
    for layer, head in [(9, 1), (19, 1), (9, 0)]:
        full = dense_weights(p, z, y, layer)[:, head]
        torch.testing.assert_close(p.alignment(z, y, layer=layer, head=head), full, atol=1e-5, rtol=1e-4)


def test_bad_alignment_requests_say_what_to_do():
    with pytest.raises(ValueError, match=r"enc_dec layers \[9\]"): PriorConfig.preset("tiny_lyrics", alignment_layer=4)
    with pytest.raises(ValueError, match="alignment_head 5 must be in 0..1"): PriorConfig.preset("tiny_single", alignment_head=5)
    with pytest.raises(ValueError, match="need a lyrics prior"): PriorConfig.preset("tiny", alignment_layer=0)
    plain = Prior(PriorConfig.preset("tiny")).eval()
    with pytest.raises(ValueError, match="not conditioned on lyrics"):
        plain.alignment(torch.zeros(1, 32, dtype=torch.long), plain.tokenize(SONGS[:1]))
    p = lively("tiny_lyrics")
    y = p.tokenize(SONGS[:1])
    with pytest.raises(ValueError, match="a window takes 1..n_ctx=32"): p.alignment(torch.zeros(1, 33, dtype=torch.long), y)
    with pytest.raises(ValueError, match="must be one of the enc_dec layers"): p.alignment(torch.zeros(1, 32, dtype=torch.long), y, layer=0)
    with pytest.raises(ValueError, match="one per row of z"): align_song(p, torch.zeros(2, 40, dtype=torch.long), SONGS[:1])
    with pytest.raises(ValueError, match="full text in Metadata.lyrics"):
        align_song(p, torch.zeros(1, 40, dtype=torch.long), [Metadata(total_length=40 * 128, lyric_tokens=(1, 2))])


def test_window_starts_match_the_sampler():
    from jukebox_nb.sampling import window_starts
    for total, n_ctx, hop in [(80, 32, 16), (81, 32, 16), (80, 32, 17), (20, 32, 4), (32, 32, 4), (100, 32, 1)]:
        assert _window_starts(total, n_ctx, hop) == window_starts(total, n_ctx, hop)


@pytest.mark.parametrize("name", ["tiny_lyrics", "tiny_single"])
def test_align_song_stitches_windows_by_lyric_index(name):
    p = lively(name, seed=2)
    c = p.cfg
    songs = [Metadata(artist=3, genres=(1,), total_length=90 * 128, lyrics="one two three four five six seven eight"),
             Metadata(artist=1, genres=(1,), total_length=90 * 128, lyrics="hey")]  # shorter than the 8-token window
    z = torch.randint(0, 64, (2, 90))
    got = align_song(p, z, songs, hop=20)
    tok = LyricTokenizer(v3=c.n_vocab == 79)
    for n, (al, m) in enumerate(zip(got, songs)):
        ids = tok.encode(m.lyrics)
        assert al.chars == tok.clean(m.lyrics) and al.weights.shape == (90, len(ids))
        want = torch.zeros(90, len(ids) + 1)  # official stitching: later windows first, padding in a spare column
        for s in reversed(_window_starts(90, 32, 20)):
            mm = Metadata(m.artist, m.genres, m.total_length, s * 128, m.lyrics)
            w = p.alignment(z[n:n + 1, s:s + 32], p.tokenize([mm]))[0]
            idx = tok.window(ids, 8, m.total_length, s * 128, c.sample_length)[1]
            for j, i in enumerate(idx): want[s:s + 32, i] = w[:, j]
        torch.testing.assert_close(al.weights, want[:, :-1])
    lit = got[0].weights.sum(0) > 0
    assert int(lit.sum()) > 3 * c.n_tokens  # successive windows see successive stretches of the text
    if name == "tiny_lyrics":  # separate encoder: the 3 real characters of the padded window share each row
        torch.testing.assert_close(got[1].weights.sum(1) <= 1 + 1e-6, torch.ones(90, dtype=torch.bool))


# --- the studio ---------------------------------------------------------------------------------------

def lyrics_models():
    from jukebox_nb.checkpoints import Jukebox
    from jukebox_nb.vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig.preset("tiny")).eval()
    top = lively("tiny_lyrics", bins=vq.cfg.l_bins)
    return Jukebox(vq, {2: top}, "tiny lyrics")


def test_model_info_alignment_of_a_lyrics_prior():
    from jukebox_nb.sampling import SampleRequest, SampleResult
    from jukebox_nb.studio import model_info
    models = lyrics_models()
    mi = model_info(models)
    assert mi.alignment is not None and mi.n_tokens == 8
    meta = mi.metadata("unknown", lyrics="la la land", seconds=0.3)
    z = torch.randint(0, mi.bins, (2, 103))
    res = SampleResult(request=SampleRequest(metadata=(meta, meta), seconds=0.3), tokens={2: z})
    w, chars = mi.alignment(res, 1)
    assert chars == "la la land" and w.shape == (10, 103)
    want = align_song(models.priors[2], z[1:], [meta], hop=int(0.125 * 32))[0].weights.T.numpy()
    np.testing.assert_allclose(w, want)
    quiet = SampleResult(request=SampleRequest(metadata=(mi.metadata("unknown", seconds=0.3),), seconds=0.3), tokens={2: z[:1]})
    assert mi.alignment(quiet, 0) is None  # no lyrics, nothing to align
    no_lyrics = SimpleNamespace(vqvae=models.vqvae, priors={2: Prior(PriorConfig.preset("tiny", bins=mi.bins))}, name="plain")
    assert model_info(no_lyrics).alignment is None


def test_studio_alignment_view_shows_a_heatmap_from_a_tiny_lyrics_prior():
    from jukebox_nb.sampling import sample_iter
    from jukebox_nb.studio import model_info
    from jukebox_nb.widgets import Studio
    models = lyrics_models()
    mi = model_info(models)
    st = Studio(mi, lambda request, config: sample_iter(models, request, config), files=[], min_interval=0.0, threaded=False)
    st.controls.fields["seconds"].value = 0.25
    for l in (1, 0): st.controls.fields["levels"][l].value = False
    st.picker.pick("artist 3", ["genre 1"]); st.lyrics.text.value = "la la land"
    import jukebox_nb.studio as studio
    calls, real = [], studio.align_song
    def counted(*a, **k): calls.append(1); return real(*a, **k)
    studio.align_song = counted
    try:
        st.controls.sample_button.click()
        st.runner.join(120)
    finally: studio.align_song = real
    assert st.runner.status == "finished" and st.controls.errors.error is None and st.alignment.errors.error is None
    assert len(calls) == 1  # the alignment and karaoke views share one pass of the prior over the song
    assert st.alignment.image.value[:4] == b"\x89PNG"
    assert "10 characters" in st.alignment.message.value


def test_model_info_alignment_reads_the_top_level_metadata_of_a_per_level_request():
    "A request with `level_metadata` (label versions differ per level, as in 1b_lyrics and the demo) has no `metadata`: the lyrics are the top level's."
    from jukebox_nb.sampling import SampleRequest, SampleResult
    from jukebox_nb.studio import model_info
    models = lyrics_models()
    mi = model_info(models)
    meta = mi.metadata("unknown", lyrics="la la land", seconds=0.3)
    z = torch.randint(0, mi.bins, (1, 103))
    res = SampleResult(request=SampleRequest(level_metadata={2: (meta,), 1: (replace(meta, lyrics=""),)}, seconds=0.3), tokens={2: z})
    got = mi.alignment(res, 0)
    assert got is not None and got[1] == "la la land" and got[0].shape == (10, 103)
