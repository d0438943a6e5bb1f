"""Properties of the factorized attention patterns (jukebox_nb.attention) at random small sizes:
the reshaped training path equals a dense masked reference, the KV-cached incremental path equals the
training path for any chunking, and caches hold only what each pattern needs."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from jukebox_nb.attention import (ATTENTION_PATTERNS, PATTERNS, FactoredAttention, Pattern, pattern_mask, reference_attention,
                                  run_incremental)
from jukebox_nb.transformer import Transformer, attn_schedule


def _make(pattern, blocks, block_ctx, heads, seed):
    torch.manual_seed(seed)
    n_ctx = blocks * block_ctx
    return FactoredAttention(12, n_ctx, 4 * heads, heads, pattern, blocks=blocks,
                             prime_len=min(n_ctx, block_ctx + 1), n_enc=3).eval()


sizes = dict(pattern=st.sampled_from(PATTERNS), blocks=st.integers(1, 5), block_ctx=st.integers(1, 6),
             heads=st.integers(1, 3), seed=st.integers(0, 10_000))


@settings(max_examples=60, deadline=None)
@given(**sizes, batch=st.integers(1, 3))
def test_training_path_equals_dense_reference(pattern, blocks, block_ctx, heads, seed, batch):
    attn = _make(pattern, blocks, block_ctx, heads, seed)
    x = torch.randn(batch, attn.n_ctx, 12)
    enc = torch.randn(batch, 3, 12) if pattern == "enc_dec" else None
    with torch.no_grad():
        torch.testing.assert_close(attn(x, enc), reference_attention(attn, x, enc), atol=1e-5, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(**sizes, data=st.data())
def test_incremental_path_equals_training_path(pattern, blocks, block_ctx, heads, seed, data):
    attn = _make(pattern, blocks, block_ctx, heads, seed)
    L = attn.n_ctx
    chunks = []
    while sum(chunks) < L: chunks.append(data.draw(st.integers(1, L - sum(chunks))))
    x = torch.randn(2, L, 12)
    enc = torch.randn(2, 3, 12) if pattern == "enc_dec" else None
    with torch.no_grad():
        torch.testing.assert_close(run_incremental(attn, x, chunks, enc), attn(x, enc), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_shorter_sequence_is_a_prefix(pattern):
    "A window shorter than n_ctx (padded to a block internally) gives the prefix of the full result."
    attn = _make(pattern, 4, 5, 2, 0)
    x = torch.randn(1, 20, 12)
    enc = torch.randn(1, 3, 12) if pattern == "enc_dec" else None
    with torch.no_grad():
        torch.testing.assert_close(attn(x[:, :13], enc), attn(x, enc)[:, :13], atol=1e-6, rtol=1e-6)


def test_cache_sizes_release_1b_lyrics():
    "1b_lyrics (6528 positions, block_ctx 102, prime 448): what each layer kind keeps while sampling."
    with torch.device("meta"):
        tr = Transformer(64, 6528, 2, 16, attn_order=12, blocks=64, prime_len=448)
    slots = {b.pattern: b.attn.cache_slots() for b in tr._attn_mods}
    assert slots == {"block": 102, "transpose_block": 6528, "prev_block": 204, "prime": 448}


def test_masks_never_look_ahead():
    for p in ("dense", "block", "transpose_block", "prev_block", "prime"):
        m = pattern_mask(p, 30, 5, prime_len=7)
        assert not torch.triu(m, diagonal=1).any(), p


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown attention pattern 'rows'"):
        FactoredAttention(8, 16, 8, 2, "rows", blocks=4)
    with pytest.raises(ValueError, match="n_state 6 is not divisible by n_head 4"):
        FactoredAttention(8, 16, 6, 4, "dense")
    with pytest.raises(ValueError, match="attn_order 3 is not supported"):
        attn_schedule(3, 4)


class Local(Pattern):
    "Test-only: a sliding window over the last `block_ctx` positions. This class is the whole edit that adds a pattern."
    name = "local"
    sees = staticmethod(lambda q, k, bc, prime: (k <= q) & (k > q - bc))
    slots = staticmethod(lambda n_ctx, bc, prime, n_enc: bc)  # a ring of the last bc positions
    reads = staticmethod(lambda p, bc, prime, n: (0, min(p + 1, n), 1))  # the whole ring once it is full


def test_a_new_pattern_is_one_table_entry(monkeypatch):
    """With `Local` in ATTENTION_PATTERNS, every path follows it: the mask, the training path (the default masked
    attention), the incremental path in any chunking, the cache size, and the decode kernels (TorchScript and static)."""
    from jukebox_nb.decode import DecodeStep
    from jukebox_nb.prior import Prior, PriorConfig
    monkeypatch.setitem(ATTENTION_PATTERNS, "local", Local)
    assert pattern_mask("local", 6, 3)[4].nonzero().flatten().tolist() == [2, 3, 4]
    attn = _make("local", 4, 5, 2, 0)
    assert attn.cache_slots() == 5
    x = torch.randn(2, 20, 12)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), reference_attention(attn, x), atol=1e-5, rtol=1e-5)
        for chunks in ([1] * 20, [7, 1, 1, 11], [20]):
            torch.testing.assert_close(run_incremental(attn, x, chunks), attn(x), atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    p = Prior(PriorConfig.preset("tiny", labels=False)).eval()
    for blk in p.layers[::2]: blk.attn.pattern = "local"  # every other layer
    with torch.no_grad():
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.05)
    z, n = torch.randint(p.cfg.bins, (2, p.cfg.n_ctx)), p.cfg.n_ctx - 1
    with torch.inference_mode():
        cond = p.condition()
        teacher = p.prior.logits(p.prior(p.sequence(z, cond)))  # the training path, teacher-forced
        for step in (DecodeStep(p), DecodeStep(p, static=True)):
            assert step.scripted != step.static
            ref, st = p.start(cond, 2), step.start(cond, 2)
            torch.testing.assert_close(step.prefill(st, z[:, :5]), p.extend(ref, z[:, :5])[:, -1], atol=1e-5, rtol=1e-5)
            for i in range(5, n):
                want = p.extend(ref, z[:, i:i + 1])[:, -1]
                torch.testing.assert_close(step(z[:, i], st), want, atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(want, teacher[:, i + 1], atol=1e-4, rtol=1e-4)
