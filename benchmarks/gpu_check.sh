#!/usr/bin/env bash
# The GPU checks of issue 5 as one prepared script for a lent GPU (the `device` tool's `run`), 2 min 40 s on an H200 (2026-12-04):
#   1. the CUDA-graph decode step against the eager static step and sample() on CUDA (tests/test_sampling.py, the tests
#      that skip without CUDA), plus the default device that Accelerate's state picks;
#   2. a real out-of-memory on the GPU (memory capped at 6 GB) that the sampler backs off from;
#   3. decode-step speed in float32 / bf16, eager / CUDA graph / torch.compile, at peer-small and 1b_lyrics sizes,
#      and windowed sampling through sample_iter with CUDA graphs.
# Needs torch, numpy, tqdm and unidecode from the machine's Python (the package runs from the working tree). A machine
# without unidecode (the H200 image, 2026-12-04) gets it from wheels in .whl/ when they travel with the tree:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl unidecode   (then carry .whl)
# Records go to $OUT/gpu_check.jsonl (or ./gpu_check.jsonl); the pytest log to $OUT/gpu_tests.log.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-.}
py=${PYTHON:-python3}
ls .whl/*.whl >/dev/null 2>&1 && $py -m pip install -q --no-index --no-deps --no-compile .whl/*.whl
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
timeout 240 $py -m pytest -q -p no:cacheprovider tests/test_sampling.py -k "cuda_graph or static_step" -rs 2>&1 | tee "$out/gpu_tests.log" | tail -5
$py - <<'PY' 2>&1 | tee -a "$out/gpu_check.jsonl"
import json
from jukebox_nb.checkpoints import Jukebox
from jukebox_nb.sampling import SampleConfig, SampleRequest, sample, resolve_device
from jukebox_nb.conditioning import Metadata
m = Jukebox.tiny()
req = SampleRequest(metadata=[Metadata(artist=1, genres=(1,), total_length=1)] * 2, seconds=(34 * 128 + 1) / 44100)
for dt in ("float32", "bfloat16", "float16"):
    r = sample(m, req, SampleConfig(dtype=dt, cuda_graph=True))
    print(json.dumps(dict(check="sample_all_levels_cuda_graph", dtype=dt, device=str(resolve_device(None)), complete=r.complete,
                          shapes={l: list(t.shape) for l, t in r.tokens.items()})))
PY
$py - <<'PY' 2>&1 | tee -a "$out/gpu_check.jsonl"
# a real out-of-memory: cap this process at 6 GB, then ask for 8 windows of a random 1b_lyrics top prior at once
# (3.8 GB of float32 weights and about 0.7 GB per window: 9.2 GB at the peak for 8 windows on an H200, 2026-12-04, which
# a 12 GB cap let through without an out-of-memory); the sampler should halve the batch (twice) and finish
import json, sys, time, torch
sys.path.insert(0, "benchmarks")
from sampling import build
from jukebox_nb.conditioning import Metadata
from jukebox_nb.checkpoints import Jukebox
from jukebox_nb.sampling import Notice, SampleConfig, SampleRequest, sample_iter
from jukebox_nb.vqvae import VQVAE, VQVAEConfig
torch.cuda.set_per_process_memory_fraction(6 * 2 ** 30 / torch.cuda.get_device_properties(0).total_memory)
p = build("1b_lyrics", torch.device("cuda"), torch.float32)
m = Jukebox(VQVAE(VQVAEConfig.preset("tiny", l_bins=p.cfg.bins)), {2: p}, "oom-check")
req = SampleRequest(metadata=[Metadata(artist=1, genres=(1,), total_length=44100 * 60, lyrics="la la la")] * 8,
                    seconds=16 * 128 / 44100, levels=(2,))
t = time.perf_counter(); notes, done = [], False
for ev in sample_iter(m, req, SampleConfig(decode=False, max_batch_size=8)):
    if isinstance(ev, Notice): notes.append(ev.message)
    done = getattr(ev, "result", None) is not None and ev.result.complete or done
print(json.dumps(dict(check="oom_backoff_1b_lyrics", complete=done, notices=notes, seconds=round(time.perf_counter() - t, 1),
                      peak_gb=round(torch.cuda.max_memory_allocated() / 2 ** 30, 2))))
PY
bench() { timeout 150 $py benchmarks/sampling.py --device cuda --repeats 3 "$@" | tee -a "$out/gpu_check.jsonl"; }
for dt in float32 bfloat16; do
  bench --preset peer-small --tokens 255 --dtype $dt
  bench --preset peer-small --tokens 255 --dtype $dt --cuda-graph
  bench --preset 1b_lyrics --tokens 64 --dtype $dt --bandwidth
  bench --preset 1b_lyrics --tokens 64 --dtype $dt --cuda-graph --bandwidth
done
bench --preset peer-small --tokens 255 --batch 4 --cuda-graph
bench --preset peer-small --tokens 255 --compile
bench --preset peer-small --length 1 4 --cuda-graph
