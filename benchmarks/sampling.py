"""Sampling speed of one prior (random weights): tokens/s, ms per step and peak memory, printed as JSON.

    python benchmarks/sampling.py --preset peer-small --batch 1 --tokens 255
    python benchmarks/sampling.py --preset oracle-top-sep --batch 1 --path reference   # the prior's own extend()
    python benchmarks/sampling.py --preset peer-small --length 1 2 4 8                  # windowed cost vs song length
    python benchmarks/sampling.py --preset 1b_lyrics --tokens 64 --dtype bfloat16 --cuda-graph   # on a GPU

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

# OpenMP threads that spin while waiting collapse on a shared CPU (other jobs hold the cores they wait for);
# passive waiting must be chosen before torch loads the OpenMP runtime. Override with OMP_WAIT_POLICY=ACTIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from jukebox_nb.conditioning import Metadata  # noqa: E402
from jukebox_nb.prior import Prior, PriorConfig  # noqa: E402
from jukebox_nb.decode import DecodeStep  # noqa: E402
from jukebox_nb.checkpoints import Jukebox  # noqa: E402
from jukebox_nb.sampling import SampleConfig, SampleRequest, draw, sample_iter  # noqa: E402
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
    "Time `a.tokens` new tokens at batch `a.batch` in one window (median of repeats); the prefill is timed apart."
    B, n = a.batch, min(a.tokens, p.cfg.n_ctx - 1)
    cond = conditioning(p, B, device)
    step = DecodeStep(p, dtype, compile=a.compile, static=a.static, cuda_graph=a.cuda_graph, threads=a.step_threads)
    prefix = torch.zeros(B, 0, dtype=torch.long, device=device)
    g = torch.Generator(device).manual_seed(0)
    def run(k):
        "(prefill s, decode wall s, decode cpu s) for the start token + k sampled tokens."
        with torch.inference_mode():
            st = (p if a.path == "reference" else step).start(cond, B, dtype)
            sync(device); t0 = time.perf_counter()
            logits = p.extend(st, prefix)[:, -1] if a.path == "reference" else step.prefill(st, prefix)
            sync(device); t1, c1 = time.perf_counter(), time.process_time()
            for _ in range(k):
                tok = draw(logits, generator=g)
                logits = p.extend(st, tok[:, None])[:, -1] if a.path == "reference" else step(tok, st)
            sync(device)
            return t1 - t0, time.perf_counter() - t1, time.process_time() - c1
    run(min(n, 4)); run(n) if a.compile else None  # warm-up (torch.compile: also the compiles of later positions)
    runs = [run(n) for _ in range(a.repeats)]
    pre, wall, cpu = (statistics.median(r[i] for r in runs) for i in range(3))
    # CPU seconds of this process: with 1 thread on a shared machine, about what the run takes with a core to itself
    return dict(tokens=n, scripted=step.scripted, step_threads=step.step_threads(B) or torch.get_num_threads(), prefill_s=round(pre, 4), tokens_per_s=round(B * n / wall, 1), ms_per_step=round(1e3 * wall / n, 4),
                tokens_per_cpu_s=round(B * n / cpu, 1), decode_times_s=[round(r[1], 4) for r in runs])


def copy_bandwidth(device, nbytes: int = 2 ** 28) -> float:
    "Bytes per second of a large tensor copy (the memory-bandwidth yardstick for a decode step)."
    x = torch.empty(nbytes // 4, device=device); y = torch.empty_like(x)
    y.copy_(x); sync(device)
    t = []
    for _ in range(5):
        s = time.perf_counter(); y.copy_(x); sync(device); t.append(time.perf_counter() - s)
    return nbytes / statistics.median(t)


def windowed(a, p: Prior, device, dtype) -> list:
    """New tokens/s of sampling K·n_ctx top-level tokens with windows, for each K in `a.length`. The lengths take turns
    within every repeat (after one warm-up round), so a drift of the machine's speed hits them alike."""
    vq = VQVAE(VQVAEConfig.preset("tiny", l_bins=p.cfg.bins))
    models = Jukebox(vq, {p.cfg.level: p}, "bench") if p.cfg.level == 2 else None
    if models is None: raise SystemExit("--length needs a top-level preset")
    cfg = SampleConfig(device=str(device), dtype=a.dtype, decode=False, chunk_size=a.chunk_size, report_every=10 ** 9,
                       max_batch_size=a.batch, decode_step=a.path, compile=a.compile, cuda_graph=a.cuda_graph,
                       step_threads=a.step_threads)
    def request(k):
        total = int(k * p.cfg.n_ctx)
        return total, SampleRequest(metadata=[Metadata(artist=1, genres=(1,), total_length=1, lyrics="hello world " * 40)] * a.batch,
                                    seconds=(total * p.cfg.hop_length + 1) / vq.cfg.sample_rate, levels=(2,),
                                    hop_fraction=(0.5, 0.5, a.hop_fraction), temperature=(1.0, 1.0, 1.0))
    times = {k: [] for k in a.length}
    for r in range(a.repeats + 1):
        for k in a.length:
            req = request(k)[1]
            sync(device); t = time.perf_counter()
            for _ in sample_iter(models, req, cfg): pass
            sync(device)
            if r: times[k].append(time.perf_counter() - t)
    rows = []
    for k in a.length:
        total, med = request(k)[0], statistics.median(times[k])
        rows.append(dict(length_x_n_ctx=k, tokens=total, tokens_per_s=round(a.batch * total / med, 1), seconds=round(med, 3)))
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
    ap.add_argument("--chunk-size", type=int, default=32, help="prefix chunk of the reference path (--length)")
    ap.add_argument("--compile", action="store_true", help="the decode step's layer loop through torch.compile (SampleConfig.compile)")
    ap.add_argument("--static", action="store_true", help="the fixed-shape decode step that CUDA graphs replay, run eagerly")
    ap.add_argument("--cuda-graph", action="store_true", help="replay the decode step from a CUDA graph (SampleConfig.cuda_graph; CUDA only)")
    ap.add_argument("--step-threads", type=int, default=None,
                    help="CPU threads of the one-token steps (SampleConfig.step_threads; default: the sampler's rule, 0: --threads)")
    ap.add_argument("--bandwidth", action="store_true", help="also measure copy bandwidth and the weight-read bound per step")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, a.dtype)
    t = time.perf_counter(); p = build(a.preset, device, torch.float32); build_s = time.perf_counter() - t
    rec = dict(preset=a.preset, batch=a.batch, path=a.path, compile=a.compile, static=a.static, cuda_graph=a.cuda_graph, device=str(device), dtype=a.dtype, threads=a.threads,
               params=sum(q.numel() for q in p.parameters()), build_s=round(build_s, 2))
    if a.length: rec["windowed"] = windowed(a, p, device, dtype); rec.update(hop_fraction=a.hop_fraction, chunk_size=a.chunk_size)
    else:
        rec.update(one_window(a, p, device, dtype))
        if a.bandwidth:
            bw = copy_bandwidth(device)
            wbytes = sum(q.numel() for q in p.parameters()) * dtype.itemsize  # the decode step reads its weights in `--dtype`
            rec.update(weight_bytes=wbytes, copy_bytes_per_s=round(bw), bandwidth_bound_ms=round(1e3 * wbytes / bw, 2),
                       ms_per_step_over_bound=round(rec["ms_per_step"] / (1e3 * wbytes / bw), 2))
    rec.update(peak_memory(device), load_1min=round(os.getloadavg()[0], 2), omp_wait_policy=os.environ["OMP_WAIT_POLICY"],
               torch=torch.__version__)
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
