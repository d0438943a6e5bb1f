"""Sampling speed of one prior (random weights): tokens/s, ms per step and peak memory, printed as JSON.

    python benchmarks/sampling.py --preset peer-small --batch 1 --tokens 255
    python benchmarks/sampling.py --preset oracle-top-sep --batch 1 --path reference   # the prior's own extend()
    python benchmarks/sampling.py --preset peer-small --length 1 2 4 8                  # windowed cost vs song length

Presets: every `PriorConfig` preset, plus `peer-small` (the size the peers are run at, see `benchmarks/peers/`)
and `oracle-top-sep` (the official `top_sep` oracle config, openai-jukebox.md §11.1).
`--tokens N` samples N tokens after the start token in one window (N < n_ctx); timings are the median of
`--repeats` runs after one warm-up. `--length K...` samples K·n_ctx top-level tokens through `sample_iter`
(windows advancing by `--hop-fraction` · n_ctx) and reports new tokens/s per K.
Each record carries the 1-minute load average and the thread count: the machine is shared, read figures with it.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from jukebox_nb.conditioning import Metadata  # noqa: E402
from jukebox_nb.prior import Prior, PriorConfig  # noqa: E402
from jukebox_nb.sampling import DecodeStep, JukeboxModels, SampleConfig, SampleRequest, sample_iter, sample_tokens  # noqa: E402
from jukebox_nb.sampling import Finished  # noqa: E402
from jukebox_nb.vqvae import VQVAE, VQVAEConfig  # noqa: E402

BENCH_PRESETS = {
    # issue 5: top prior width 128, depth 4, 2 heads, n_ctx 256, 16 blocks, row/column/previous-row attention,
    # vocabulary 256, no lyrics, artist/genre/timing labels with 16 genres, 32 artists, 1 genre slot, 16 timing bins
    "peer-small": ("5b", dict(n_ctx=256, bins=256, width=128, depth=4, heads=2, attn_order=2, blocks=16, init_scale=0.2,
                              merged_decoder=False, n_genres=16, n_artists=32, max_bow_genre_size=1, t_bins=16,
                              min_duration=0.0, max_duration=600.0)),
    # openai-oracle/hparams.json "top_sep" (the official-code oracle, as in tests/test_prior_parity.py)
    "oracle-top-sep": ("5b_lyrics", dict(n_ctx=256, bins=128, width=64, blocks=16, depth=20, heads=2, n_tokens=32,
                                         prime_width=32, prime_depth=3, prime_heads=1, prime_blocks=4, min_duration=0.0)),
}


def config(name: str) -> PriorConfig:
    if name in BENCH_PRESETS:
        base, over = BENCH_PRESETS[name]
        return PriorConfig.preset(base, **over)
    return PriorConfig.preset(name)


def build(name: str, device, dtype) -> Prior:
    torch.manual_seed(0)
    cfg = config(name)
    with torch.device(device): p = Prior(cfg).eval()
    with torch.no_grad():  # random but live: zero-initialised projections get weights too
        for q in p.parameters(): q.add_(torch.randn_like(q) * 0.02)
    return p


def conditioning(p: Prior, B: int, device):
    c = p.cfg
    y = p.tokenize([Metadata(artist=1, genres=(1,), total_length=c.sample_length * 4, lyrics="hello world " * 40)] * B) if c.labels else None
    z = torch.randint(c.bins, (B, c.n_ctx // c.cond_downsample), device=device) if c.upsampler else None
    with torch.inference_mode(): return p.condition(None if y is None else y.to(device), z)


def peak_memory(device) -> dict:
    if device.type == "cuda": return {"peak_gpu_bytes": torch.cuda.max_memory_allocated(device)}
    return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def one_window(a, p: Prior, device, dtype) -> dict:
    "Time `a.tokens` new tokens at batch `a.batch` in one window (median of repeats)."
    B, n = a.batch, min(a.tokens, p.cfg.n_ctx - 1)
    cond = conditioning(p, B, device)
    step = "reference" if a.path == "reference" else DecodeStep(p, dtype)
    prefix = torch.zeros(B, 0, dtype=torch.long, device=device)
    g = torch.Generator(device).manual_seed(0)
    def run(k):
        it = sample_tokens(p, cond, prefix, k + 1, 1.0, generator=g, dtype=dtype, step=step, report_every=10 ** 9)
        for _ in it: pass
    run(min(n, 16))  # warm-up
    times, cpu = [], []
    for _ in range(a.repeats):
        sync(device); t, c = time.perf_counter(), time.process_time(); run(n); sync(device)
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    med, cmed = statistics.median(times), statistics.median(cpu)
    # CPU seconds of this process: with 1 thread on a shared machine, what the run would take with a core to itself
    return dict(tokens=n + 1, tokens_per_s=round(B * (n + 1) / med, 1), ms_per_step=round(1e3 * med / (n + 1), 4),
                tokens_per_cpu_s=round(B * (n + 1) / cmed, 1), times_s=[round(t, 4) for t in times])


def windowed(a, p: Prior, device, dtype) -> list:
    "New tokens/s of sampling K·n_ctx top-level tokens with windows, for each K in `a.length`."
    vq = VQVAE(VQVAEConfig.preset("tiny", l_bins=p.cfg.bins))
    models = JukeboxModels(vq, {p.cfg.level: p}, "bench") if p.cfg.level == 2 else None
    if models is None: raise SystemExit("--length needs a top-level preset")
    rows = []
    for k in a.length:
        total = int(k * p.cfg.n_ctx)
        req = SampleRequest(metadata=[Metadata(artist=1, genres=(1,), total_length=1, lyrics="hello world " * 40)] * a.batch,
                            seconds=(total * p.cfg.hop_length + 1) / vq.cfg.sample_rate, levels=(2,),
                            hop_fraction=(0.5, 0.5, a.hop_fraction), temperature=(1.0, 1.0, 1.0))
        cfg = SampleConfig(device=str(device), dtype=a.dtype, decode=False, chunk_size=a.chunk_size, report_every=10 ** 9,
                           max_batch_size=a.batch, decode_step=a.path)
        times, windows = [], 0
        for _ in range(a.repeats):
            sync(device); t = time.perf_counter()
            for ev in sample_iter(models, req, cfg): windows += 0
            sync(device); times.append(time.perf_counter() - t)
        med = statistics.median(times)
        rows.append(dict(length_x_n_ctx=k, tokens=total, tokens_per_s=round(a.batch * total / med, 1),
                         seconds=round(med, 3)))
    base = rows[0]["tokens_per_s"]
    for r in rows: r["relative_to_first"] = round(r["tokens_per_s"] / base, 3)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="peer-small")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=255)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--path", choices=["fast", "reference"], default="fast")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--length", type=float, nargs="*", help="sweep song lengths, in multiples of n_ctx")
    ap.add_argument("--hop-fraction", type=float, default=0.125)
    ap.add_argument("--chunk-size", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, a.dtype)
    t = time.perf_counter(); p = build(a.preset, device, torch.float32); build_s = time.perf_counter() - t
    rec = dict(preset=a.preset, batch=a.batch, path=a.path, device=str(device), dtype=a.dtype, threads=a.threads,
               params=sum(q.numel() for q in p.parameters()), build_s=round(build_s, 2))
    if a.length: rec["windowed"] = windowed(a, p, device, dtype); rec.update(hop_fraction=a.hop_fraction, chunk_size=a.chunk_size)
    else: rec.update(one_window(a, p, device, dtype))
    rec.update(peak_memory(device), load_1min=round(os.getloadavg()[0], 2), torch=torch.__version__)
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
