"""Worker for `tests/test_training.py::test_two_processes_resume_from_the_same_checkpoint` (run under `accelerate launch`).

Trains a tiny VQ-VAE for 2 steps (checkpoints at 1 and 2), truncates only `rng_rank1.pt` of step 2, then resumes to
step 3. Each process writes the step it resumed from, the steps it ran, its final state_dict and its damage warnings
to `OUT/rank{r}.pt`. Ranks that resumed from different steps exit with an error at once (training on would hang DDP).
"""
import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when jukebox_nb is not installed

import torch
from accelerate.utils import gather_object

import jukebox_nb.training as T  # noqa: E402
from jukebox_nb.vqvae import VQVAE, VQVAEConfig, measure_bandwidth  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    ds = T.ToneDataset(n=8, length=2048)
    vcfg = VQVAEConfig.preset("tiny", bandwidth=measure_bandwidth(ds[i]["audio"][None] for i in range(len(ds))))
    cfg = lambda total: T.TrainConfig(total_steps=total, batch_size=2, warmup_steps=1, ckpt_every=1, log_every=1,
                                      seed=0, out_dir=str(a.out / "run"))
    acc = T.train(lambda ar: VQVAE(vcfg, all_reduce=ar), ds, cfg(2), resume=False, progress=False).state.accelerator
    if acc.is_main_process:  # a copy cut short: only rank 1's RNG file of the newest checkpoint
        f = a.out / "run" / "checkpoints" / "step_00000002" / "rng_rank1.pt"
        f.write_bytes(f.read_bytes()[:100])
    acc.wait_for_everyone()
    resumed, setup = [], T._setup
    def spy(*args, **kw):  # the step each rank resumed from; stop every rank at once when they differ
        state, ckpt = setup(*args, **kw)
        resumed.append(state.step); steps = gather_object([state.step])
        if len(set(steps)) > 1: raise SystemExit(f"ranks resumed from different steps: {steps}")
        return state, ckpt
    T._setup = spy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = T.train(lambda ar: VQVAE(vcfg, all_reduce=ar), ds, cfg(3), progress=False)
    acc = res.state.accelerator
    torch.save({"resumed": resumed, "steps": [r["step"] for r in res.history],
                "state": {k: v.cpu() for k, v in res.model.state_dict().items()},
                "damaged": [str(w.message) for w in caught if "damaged" in str(w.message)]},
               a.out / f"rank{acc.process_index}.pt")
    acc.wait_for_everyone()
    acc.end_training()


if __name__ == "__main__":
    main()
