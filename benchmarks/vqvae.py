"""VQ-VAE speed: encode (all 3 levels) and level-0 decode of 10 s of 44.1 kHz audio, as real-time factors.

    python benchmarks/vqvae.py                       # released + mini presets, CPU (and CUDA when present)
    python benchmarks/vqvae.py --presets released --repeats 5 --threads 2
    python benchmarks/vqvae.py --presets released --official /path/to/openai-jukebox   # side by side

Weights are random (the speed does not depend on them); the codebooks are filled with random vectors so the
codes are spread. Prints one JSON object. `rtf` = compute seconds / audio seconds (below 1 is faster than
real time). By default the process first calls `keep_freed_memory()` (see 04_vqvae); `--no-keep-freed-memory`
measures glibc's defaults. Times are medians over `--repeats` runs after one warm-up run (`first_call_s` is that warm-up,
which includes oneDNN's one-off kernel set-up). The machine's load average is recorded before and after,
because other jobs on a shared machine inflate wall times. Reference: the official code took 11.3 s for
encode + level-0 decode of 10 s on a quiet 2-core machine (encode 7.3 s, decode 4.1 s).

`--official DIR` (a checkout of openai/jukebox, the folder holding `jukebox/`) also times the untouched official
VQ-VAE with the same random weights, interleaved run by run with ours so both see the same machine load, and
checks that both produce the same codes. On CPU its `.cuda()` calls are turned into no-ops (as for the oracle).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import sys

import torch

from jukebox_nb.vqvae import VQVAE, VQVAEConfig, keep_freed_memory

OFFICIAL_S = 11.3  # official openai/jukebox, encode (3 levels) + level-0 decode of 10 s, 2-core CPU


def _sync(device: torch.device) -> None:
    if device.type == "cuda": torch.cuda.synchronize()


def timed(fn, device: torch.device) -> tuple[float, float, object]:
    "Wall and process-CPU seconds of `fn()`, and its result."
    _sync(device); w, c = time.perf_counter(), time.process_time()
    out = fn(); _sync(device)
    return time.perf_counter() - w, time.process_time() - c, out


def bench_preset(name: str, device: torch.device, seconds: float, repeats: int) -> dict:
    "Median encode / level-0 decode times of one preset on one device."
    torch.manual_seed(0)
    model = VQVAE(VQVAEConfig.preset(name)).eval().to(device)
    for blk in model.bottleneck.level_blocks: blk.k.normal_()
    hop = model.cfg.hop_lengths[-1]
    T = int(seconds * model.cfg.sample_rate) // hop * hop  # 440,960 samples for 10 s
    x = (0.1 * torch.randn(1, 1, T)).to(device)
    runs = []
    for _ in range(repeats + 1):  # the first run is the warm-up
        we, ce, codes = timed(lambda: model.encode(x), device)
        wd, cd, _ = timed(lambda: model.decode(codes[0], 0), device)
        runs.append(dict(encode_s=we, decode0_s=wd, total_s=we + wd, cpu_s=ce + cd))
    med = {k: statistics.median(r[k] for r in runs[1:]) for k in runs[0]}
    audio_s = T / model.cfg.sample_rate
    return dict(preset=name, device=str(device), params=sum(p.numel() for p in model.parameters()),
                samples=T, audio_s=audio_s, **{k: round(v, 3) for k, v in med.items()},
                rtf_encode=round(med["encode_s"] / audio_s, 4), rtf_decode0=round(med["decode0_s"] / audio_s, 4),
                rtf_total=round(med["total_s"] / audio_s, 4), first_call_s=round(runs[0]["total_s"], 3),
                speedup_vs_official=round(OFFICIAL_S / med["total_s"], 2) if name == "released" and device.type == "cpu" else None,
                runs=[{k: round(v, 3) for k, v in r.items()} for r in runs[1:]])


def official_vqvae(path: str, T: int) -> torch.nn.Module:
    "The official VQ-VAE with the released hparams, built from a checkout at `path`, runnable on CPU."
    sys.path.insert(0, path)
    torch.Tensor.cuda = lambda self, *a, **k: self  # the official bottleneck calls .cuda() on its buffers
    import jukebox.utils.dist_adapter as dist
    dist.is_available = lambda: False
    from jukebox.vqvae.vqvae import VQVAE as OfficialVQVAE
    return OfficialVQVAE(input_shape=(T, 1), levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), emb_width=64,
                         l_bins=2048, mu=0.99, commit=0.02, spectral=0.0, multispectral=1.0, multipliers=(2, 1, 1),
                         width=32, depth=4, m_conv=1.0, dilation_growth_rate=3, dilation_cycle=None,
                         reverse_decoder_dilation=True).eval()


def side_by_side(path: str, seconds: float, repeats: int) -> dict:
    "Official vs ours, released preset on CPU, interleaved; medians after one warm-up round."
    torch.manual_seed(0)
    ours = VQVAE(VQVAEConfig.preset("released")).eval()
    T = int(seconds * 44100) // 128 * 128
    off = official_vqvae(path, T)
    for blk in ours.bottleneck.level_blocks: blk.k.normal_()
    off.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.endswith(("k_sum", "k_elem", "initted"))})
    x = 0.1 * torch.randn(1, 1, T)
    def run_official():
        with torch.no_grad():
            zs = off.encode(x.permute(0, 2, 1))  # official input is [N, T, 1]
            off.decode(zs[:1], start_level=0, end_level=1)
        return zs
    def run_ours():
        zs = ours.encode(x)
        ours.decode(zs[0], 0)
        return zs
    times = {"official": [], "ours": []}
    for r in range(repeats + 1):
        for name, fn in (("official", run_official), ("ours", run_ours)):
            wall, cpu, zs = timed(fn, torch.device("cpu"))
            if r: times[name].append(dict(total_s=round(wall, 3), cpu_s=round(cpu, 3)))
            codes = zs if name == "official" else codes
            if name == "ours": same = [bool(torch.equal(a, b)) for a, b in zip(codes, zs)]
    med = {n: {k: statistics.median(r[k] for r in v) for k in ("total_s", "cpu_s")} for n, v in times.items()}
    return dict(official=dict(**med["official"], runs=times["official"]), ours=dict(**med["ours"], runs=times["ours"]),
                speedup_wall=round(med["official"]["total_s"] / med["ours"]["total_s"], 2),
                speedup_cpu=round(med["official"]["cpu_s"] / med["ours"]["cpu_s"], 2), codes_equal=same)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["released", "mini"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--official", default=None, help="openai/jukebox checkout: time the official VQ-VAE side by side")
    p.add_argument("--no-keep-freed-memory", action="store_true",
                   help="leave glibc's malloc defaults (big tensors mmap'd and page-faulted in on every allocation)")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    kept = False if a.no_keep_freed_memory else keep_freed_memory()  # process-wide: applies to --official too
    devices = a.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    load_before = os.getloadavg()
    results = [bench_preset(n, torch.device(d), a.seconds, a.repeats) for d in devices for n in a.presets]
    versus = side_by_side(a.official, a.seconds, a.repeats) if a.official else None
    report = dict(benchmark="vqvae encode(3 levels) + level-0 decode", torch=torch.__version__,
                  cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                  torch_threads=torch.get_num_threads(), mkldnn=torch.backends.mkldnn.is_available(), keep_freed_memory=kept,
                  cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                  loadavg_before=[round(v, 2) for v in load_before], loadavg_after=[round(v, 2) for v in os.getloadavg()],
                  official_s=OFFICIAL_S, target_s=round(OFFICIAL_S / 2, 2), results=results, versus_official=versus)
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
