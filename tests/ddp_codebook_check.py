"""Worker for `tests/test_training.py::test_two_processes_keep_codebooks_in_sync` (run under `accelerate launch`).

Trains a tiny VQ-VAE for a few steps on generated audio twice on every process: once with the codebook
`all_reduce` from `make_all_reduce` ("synced") and once with a no-op ("local"). Each process writes its
final state_dict to `OUT/{run}_rank{r}.pt`; the test compares the ranks' files.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when jukebox_nb is not installed

import torch

from jukebox_nb.training import ToneDataset, TrainConfig, train  # noqa: E402
from jukebox_nb.vqvae import VQVAE, VQVAEConfig, measure_bandwidth  # noqa: E402


def run(name: str, out: Path, steps: int, synced: bool) -> None:
    "Train one run and write this process's final model state."
    cfg = TrainConfig(total_steps=steps, batch_size=2, warmup_steps=1, ckpt_every=steps, log_every=1, seed=0,
                      out_dir=str(out / name))
    ds = ToneDataset(n=16, length=2048)
    vcfg = VQVAEConfig.preset("tiny", bandwidth=measure_bandwidth(ds[i]["audio"][None] for i in range(len(ds))))
    build = (lambda ar: VQVAE(vcfg, all_reduce=ar)) if synced else (lambda ar: VQVAE(vcfg))  # "local": no-op sync
    res = train(build, ds, cfg, resume=False, progress=False)
    acc = res.state.accelerator
    state = {k: v.cpu() for k, v in res.model.state_dict().items()}
    buffers = [k for k, _ in res.model.named_buffers() if k in state]  # the codebooks and their EMA statistics
    torch.save({"state": state, "buffers": buffers}, out / f"{name}_rank{acc.process_index}.pt")
    acc.wait_for_everyone()
    return acc


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    run("synced", a.out, a.steps, synced=True)
    acc = run("local", a.out, a.steps, synced=False)
    acc.end_training()  # also destroys the process group


if __name__ == "__main__":
    main()
