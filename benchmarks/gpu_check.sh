#!/usr/bin/env bash
# The GPU checks of issue 5 as one prepared script for a lent GPU (the `device` tool's `run`), about 5 minutes on an H200:
#   1. the CUDA-graph decode step against the eager static step and sample() on CUDA (tests/test_sampling.py, the tests
#      that skip without CUDA), plus the default device that Accelerate's state picks;
#   2. decode-step speed in float32 / bf16, eager / CUDA graph / torch.compile, at peer-small and 1b_lyrics sizes,
#      and windowed sampling through sample_iter with CUDA graphs.
# Needs only torch, numpy and tqdm from the machine's Python (the package runs from the working tree).
# Records go to $OUT/gpu_check.jsonl (or ./gpu_check.jsonl); the pytest log to $OUT/gpu_tests.log.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
out=${OUT:-.}
py=${PYTHON:-python3}
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
timeout 240 $py -m pytest -q -p no:cacheprovider tests/test_sampling.py -k "cuda_graph or static_step" -rs 2>&1 | tee "$out/gpu_tests.log" | tail -5
$py - <<'PY' 2>&1 | tee -a "$out/gpu_check.jsonl"
import json
from jukebox_nb.sampling import JukeboxModels, SampleConfig, SampleRequest, sample, resolve_device
from jukebox_nb.conditioning import Metadata
m = JukeboxModels.tiny()
req = SampleRequest(metadata=[Metadata(artist=1, genres=(1,), total_length=1)] * 2, seconds=(34 * 128 + 1) / 44100)
for dt in ("float32", "bfloat16", "float16"):
    r = sample(m, req, SampleConfig(dtype=dt, cuda_graph=True))
    print(json.dumps(dict(check="sample_all_levels_cuda_graph", dtype=dt, device=str(resolve_device(None)), complete=r.complete,
                          shapes={l: list(t.shape) for l, t in r.tokens.items()})))
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
