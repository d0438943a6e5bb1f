"""Cost of one later window of windowed sampling, taken apart: conditioning, start + prefill of the known tokens,
and the sampled steps (CPU time, medians), printed as JSON. `new_token_share` is the part of the window's time spent
on new tokens: about what windowed sampling keeps of single-window tokens/s in the long run.

    python benchmarks/window_cost.py --preset peer-small --hop-fraction 0.125 --threads 1
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see sampling.py
import torch  # noqa: E402

import sampling as bench  # noqa: E402  (benchmarks/sampling.py)
from jukebox_nb.decode import DecodeStep  # noqa: E402
from jukebox_nb.sampling import draw, hop_tokens  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="peer-small")
    ap.add_argument("--hop-fraction", type=float, default=0.125)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=29)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    p = bench.build(a.preset, torch.device("cpu"), torch.float32)
    c = p.cfg
    hop = hop_tokens(a.hop_fraction, c.n_ctx)
    z = torch.randint(c.bins, (1, c.n_ctx - hop))  # a later window knows all but its last `hop` codes
    y = p.tokenize([bench.Metadata(artist=1, genres=(1,), total_length=c.sample_length * 4)]) if c.labels else None
    step, g, cost = DecodeStep(p), torch.Generator().manual_seed(0), {"condition": [], "prefill": [], "steps": []}
    with torch.inference_mode():
        for r in range(a.repeats + 1):
            t0 = time.process_time(); cond = p.condition(y, None)
            t1 = time.process_time(); st = p.start(cond, 1); logits = step.prefill(st, z)
            t2 = time.process_time()
            for i in range(hop - 1): logits = step(draw(logits, generator=g), st)
            draw(logits, generator=g); t3 = time.process_time()
            if r:
                for k, v in zip(cost, (t1 - t0, t2 - t1, t3 - t2)): cost[k].append(v)
    med = {k: statistics.median(v) for k, v in cost.items()}
    print(json.dumps(dict(preset=a.preset, hop_tokens=hop, known_tokens=c.n_ctx - hop, threads=a.threads,
                          condition_ms=round(1e3 * med["condition"], 3), start_prefill_ms=round(1e3 * med["prefill"], 3),
                          steps_ms=round(1e3 * med["steps"], 3), ms_per_step=round(1e3 * med["steps"] / hop, 4),
                          new_token_share=round(med["steps"] / sum(med.values()), 3), load_1min=round(os.getloadavg()[0], 2))))


if __name__ == "__main__":
    main()
