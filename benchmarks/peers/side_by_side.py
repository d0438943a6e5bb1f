"""Shared timing loop of the peer comparisons: interleaved runs, medians of wall and CPU time."""
import os
import statistics


def compare(runs: dict, # name -> callable returning (wall s, cpu s) of one run; "ours" and one peer
            tokens: dict, # name -> tokens one run times (per item)
            batch: int, repeats: int, **info) -> dict:
    "Run every callable `repeats + 1` times, interleaved (the first round is a warm-up); a JSON-able summary."
    res = {k: [] for k in runs}
    load0 = os.getloadavg()[0]
    for r in range(repeats + 1):
        for name, f in runs.items():
            wall, cpu = f()
            if r: res[name].append((wall, cpu))
    out = dict(info, batch=batch, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"), load_1min_before=round(load0, 2),
               load_1min_after=round(os.getloadavg()[0], 2))
    for k, v in res.items():
        n = tokens[k]
        wall, cpu = statistics.median(w for w, _ in v), statistics.median(c for _, c in v)
        out[k] = dict(tokens_per_s=round(batch * n / wall, 1), tokens_per_cpu_s=round(batch * n / cpu, 1),
                      ms_per_step=round(1e3 * wall / n, 3), wall_s=[round(w, 3) for w, _ in v])
    peer = next(k for k in runs if k != "ours")
    out["speedup_wall"] = round(out["ours"]["tokens_per_s"] / out[peer]["tokens_per_s"], 2)
    out["speedup_cpu"] = round(out["ours"]["tokens_per_cpu_s"] / out[peer]["tokens_per_cpu_s"], 2)
    return out
