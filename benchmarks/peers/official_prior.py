"""Side-by-side sampling speed: the official Jukebox `ConditionalAutoregressive2D.sample` loop vs ours, same
architecture, random weights, conditioning precomputed on both sides, interleaved runs. Prints JSON.

The official code is NOT part of this repository. Check it out anywhere (e.g. `git clone
https://github.com/openai/jukebox /work/scratch/official`) and pass `--official DIR` (the folder holding
`jukebox/`). On CPU the script makes `.cuda()` a no-op, turns the distributed helpers off and lets the
`torch.cuda.LongTensor` type asserts accept CPU tensors; nothing else of the official code is changed.

    python benchmarks/peers/official_prior.py --official /work/scratch/official --preset oracle-top-sep --batch 1
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# OpenMP threads that spin while waiting collapse on a shared CPU (other jobs hold the cores they wait for);
# passive waiting must be chosen before torch loads the OpenMP runtime. Override with OMP_WAIT_POLICY=ACTIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

import sampling as ours  # noqa: E402  (benchmarks/sampling.py)
from peers.side_by_side import compare  # noqa: E402
from jukebox_nb.decode import DecodeStep  # noqa: E402
from jukebox_nb.sampling import draw  # noqa: E402


def official_model(cfg, official: str):
    "The official token model with `cfg`'s architecture (on CPU)."
    sys.path.insert(0, official)
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.cuda.LongTensor = torch.LongTensor  # the official asserts check for CUDA long tensors
    import jukebox.utils.dist_adapter as da
    da.is_available = lambda: False
    from jukebox.prior.autoregressive import ConditionalAutoregressive2D
    enc = cfg.n_tokens if cfg.lyrics == "separate" else 0
    torch.manual_seed(0)
    m = ConditionalAutoregressive2D(input_shape=(cfg.seq_len,), bins=cfg.total_bins, width=cfg.width, depth=cfg.depth,
                                    heads=cfg.heads, init_scale=cfg.init_scale, m_attn=cfg.m_attn, m_mlp=cfg.m_mlp,
                                    attn_order=cfg.attn_order, blocks=cfg.blocks, x_cond=True, y_cond=True, encoder_dims=enc,
                                    merged_decoder=cfg.merged_decoder, prime_len=cfg.prime_keys or None).eval()
    with torch.no_grad():
        for q in m.parameters(): q.add_(torch.randn_like(q) * 0.02)
    return m, enc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="folder containing the official `jukebox` package")
    ap.add_argument("--preset", default="oracle-top-sep")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="our decode step's weights and caches (the official code samples in float32 on a CPU)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = ours.config(a.preset)
    if cfg.upsampler: raise SystemExit("this comparison covers top priors")
    off, enc = official_model(cfg, a.official)
    mine = ours.build(a.preset, torch.device("cpu"), torch.float32)
    B, n, W = a.batch, a.tokens, cfg.width
    y_cond, x_cond = torch.randn(B, 1, W), torch.randn(B, cfg.seq_len, W)
    enc_kv = torch.randn(B, enc, W) if enc else None
    cond = ours.conditioning(mine, B, "cpu")
    dtype = getattr(torch, a.dtype)
    step, g = DecodeStep(mine, dtype), torch.Generator().manual_seed(0)
    devnull = open(os.devnull, "w")
    def run_official():
        err, out, sys.stderr, sys.stdout = sys.stderr, sys.stdout, devnull, devnull  # the official loop draws a tqdm bar
        t, c = time.perf_counter(), time.process_time()
        try: off.sample(B, x_cond=x_cond, y_cond=y_cond, encoder_kv=enc_kv, sample_tokens=n)
        finally: sys.stderr, sys.stdout = err, out
        return time.perf_counter() - t, time.process_time() - c
    def run_ours():  # the prefill (the start token, and a single-sequence prior's lyrics) is not timed
        with torch.inference_mode():
            st = mine.start(cond, B, dtype)
            logits = step.prefill(st, torch.zeros(B, 0, dtype=torch.long))
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n - 1): logits = step(draw(logits, generator=g), st)
            return time.perf_counter() - t, time.process_time() - c
    # ours times n - 1 steps (its first token comes from the prefill), the official n
    out = compare({"official": run_official, "ours": run_ours}, {"official": n, "ours": n - 1}, B, a.repeats,
                  preset=a.preset, n_tokens=n, threads=a.threads, our_dtype=a.dtype)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
