"""Worker for `tests/test_prior_training.py::test_two_processes_train_a_prior_in_step` (run under `accelerate launch`).

Trains the `tiny` top prior with `train_prior` on a codes folder for a few steps; each process writes its
initial and final parameters and the windows it drew to `OUT/rank{r}.pt`; the test compares the ranks.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when jukebox_nb is not installed

import torch

import jukebox_nb.training as T  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--codes", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    seen, inputs = [], T.prior_inputs
    def spy(batch):  # record which windows this rank trains on
        seen.append((batch["track"].tolist(), batch["start"].tolist())); return inputs(batch)
    T.prior_inputs = spy
    init = {}
    train = T.train
    def capture(build, *args, **kw):
        def wrapped(all_reduce):
            m = build(all_reduce); init.update({k: v.detach().clone() for k, v in m.state_dict().items()}); return m
        return train(wrapped, *args, **kw)
    T.train = capture
    res = T.train_prior(a.codes, 2, "tiny", steps=a.steps, out_dir=a.out / "run", batch_size=2, warmup_steps=1,
                        log_every=1, ckpt_every=a.steps, valid_fraction=0.0, progress=False)
    acc = res.state.accelerator
    final = {k: v.detach().cpu() for k, v in res.model.state_dict().items()}
    torch.save({"init": init, "final": final, "batches": seen}, a.out / f"rank{acc.process_index}.pt")
    acc.wait_for_everyone()
    acc.end_training()


if __name__ == "__main__":
    main()
