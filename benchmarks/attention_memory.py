"""Training-path memory of each attention pattern vs dense, n_ctx 1k…8k. Prints JSON.

For each (pattern, n_ctx) a fresh subprocess runs one forward + backward of a `FactoredAttention`
layer (batch 1, n_state 64, 2 heads, block_ctx 64 as in the releases) and reports
* `saved_bytes`: bytes autograd keeps for the backward pass (counted with saved-tensor hooks; exact),
* `peak_rss_delta_bytes`: growth of the process's peak resident memory during forward + backward
  (coarse: allocator caching and page granularity included).
The factorized patterns should grow linearly in n_ctx (O(n_ctx · block_ctx)). Two dense baselines:
`dense` is our causal dense layer on `scaled_dot_product_attention` (PyTorch's fused CPU/GPU kernels
do not materialize the scores, so it is linear in memory too, but quadratic in time), and
`dense_masked` computes the full (n_ctx × n_ctx) masked score matrix as the official code does
(`reference_attention`), which is the O(n_ctx²) baseline the factorization avoids.

Usage: python benchmarks/attention_memory.py [--n-ctx 1024 2048 4096 8192] [--patterns dense block ...]
"""
import argparse
import json
import os
import resource
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")


def measure(pattern: str, n_ctx: int, block_ctx: int = 64, n_state: int = 64, heads: int = 2) -> dict:
    import torch
    from jukebox_nb.attention import FactoredAttention, reference_attention
    torch.manual_seed(0)
    n_in = 64
    masked = pattern == "dense_masked"
    attn = FactoredAttention(n_in, n_ctx, n_state, heads, "dense" if masked else pattern, blocks=n_ctx // block_ctx,
                             prime_len=448, n_enc=512)
    x = torch.randn(1, n_ctx, n_in, requires_grad=True)
    enc = torch.randn(1, 512, n_in) if pattern == "enc_dec" else None
    saved = []
    def pack(t):
        saved.append(t.numel() * t.element_size()); return t
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = reference_attention(attn, x) if masked else attn(x, enc)
    y.square().sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(pattern=pattern, n_ctx=n_ctx, block_ctx=block_ctx, saved_bytes=int(sum(saved)),
                peak_rss_delta_bytes=int((peak - base) * 1024))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-ctx", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    ap.add_argument("--patterns", nargs="+", default=["dense_masked", "dense", "block", "transpose_block", "prev_block", "prime", "enc_dec"])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(measure(a.one[0], int(a.one[1])))); return
    rows = []
    for p in a.patterns:
        for n in a.n_ctx:
            out = subprocess.run([sys.executable, __file__, "--one", p, str(n)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    dense = {r["n_ctx"]: r["saved_bytes"] for r in rows if r["pattern"] == "dense_masked"}
    for r in rows:
        if r["n_ctx"] in dense: r["saved_vs_dense_masked"] = round(r["saved_bytes"] / dense[r["n_ctx"]], 4)
    growth = {}
    for p in a.patterns:
        s = sorted((r["n_ctx"], r["saved_bytes"]) for r in rows if r["pattern"] == p)
        if len(s) > 1: growth[p] = round(s[-1][1] / s[0][1], 2)  # x-fold from smallest to largest n_ctx
    print(json.dumps(dict(benchmark="attention_memory", torch_threads=os.environ["OMP_NUM_THREADS"], rows=rows,
                          saved_growth_smallest_to_largest=growth,
                          n_ctx_growth=max(a.n_ctx) / min(a.n_ctx)), indent=1))


if __name__ == "__main__":
    main()
