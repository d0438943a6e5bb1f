"""Worker for `tests/test_prior_training.py::test_fsdp2_shards_a_tiny_prior_on_two_cpu_processes`.

Run with `python -m torch.distributed.run --nproc_per_node 2 tests/fsdp_check.py --out DIR` (gloo, CPU).
Each rank shards a `tiny` prior with `training.shard_prior` (FSDP2 `fully_shard` per transformer block,
activation checkpointing on), trains 4 steps on its half of each global batch, and writes its losses,
local parameter count and the gathered full state. Then it saves the full state after step 2 with
`full_state`, loads it into a freshly sharded model with `load_full_state` and replays steps 3-4.
Rank 0 also trains an unsharded copy on the whole global batches as the reference.
"""
import argparse
import copy
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.distributed as dist

from jukebox_nb.prior import Prior, PriorConfig  # noqa: E402
from jukebox_nb.training import _registered, _unsharded_copy, full_state, load_full_state, shard_prior  # noqa: E402

CFG = PriorConfig.preset("tiny", labels=False, checkpoint=True)


def batch(step: int) -> torch.Tensor:
    "The global batch of `step`: 4 windows of 32 codes."
    return torch.randint(0, CFG.bins, (4, CFG.n_ctx), generator=torch.Generator().manual_seed(step))


def fresh() -> tuple[Prior, torch.optim.Optimizer]:
    torch.manual_seed(0)
    m = Prior(CFG)
    return m, None


def steps(model, opt, todo, rank, world):
    out = []
    for s in todo:
        z = batch(s).chunk(world)[rank]
        loss = model(z).loss
        loss.backward(); opt.step(); opt.zero_grad()
        t = loss.detach().clone()
        if world > 1: dist.all_reduce(t); t /= world
        out.append(t.item())
    return out


def main():
    p = argparse.ArgumentParser(); p.add_argument("--out", type=Path, required=True); a = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, _ = fresh(); shard_prior(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    local = sum(p.to_local().numel() for p in model.parameters())
    losses = steps(model, opt, [0, 1], rank, world)
    weights, optim = copy.deepcopy(full_state(model, opt))  # complete on rank 0; copied: on CPU it shares the live tensors
    losses += steps(model, opt, [2, 3], rank, world)
    final, _ = full_state(model, opt)
    again, _ = fresh(); shard_prior(again)
    opt2 = torch.optim.AdamW(again.parameters(), lr=1e-2)
    load_full_state(again, opt2, weights if rank == 0 else {}, optim if rank == 0 else {})
    resumed = steps(again, opt2, [2, 3], rank, world)
    if rank == 0:
        plain = _unsharded_copy(model, final)  # what a checkpoint saves with save_pretrained
        assert type(plain) is Prior and _registered(plain), type(plain)
        torch.save({"losses": losses, "local_numel": local, "state": final, "resumed_losses": resumed,
                    "plain": {k: v.clone() for k, v in plain.state_dict().items()}}, a.out / "rank0.pt")
        ref, _ = fresh(); ropt = torch.optim.AdamW(ref.parameters(), lr=1e-2)
        ref_losses = steps(ref, ropt, [0, 1, 2, 3], 0, 1)
        torch.save({"losses": ref_losses, "numel": sum(p.numel() for p in ref.parameters()), "state": ref.state_dict()},
                   a.out / "reference.pt")
    else: torch.save({"losses": losses, "local_numel": local}, a.out / f"rank{rank}.pt")
    dist.barrier(); dist.destroy_process_group()
    # Leave without interpreter finalization. Once, in CI (2026-12-04), a rank died with "terminate called without an
    # active exception" (SIGABRT); six local runs did not repeat it. The likely cause is teardown: Gloo worker threads
    # that still hold work objects can abort while the interpreter is finalized (pytorch/pytorch#179291). Everything
    # this worker owes is on disk by now, and a failure before this line still fails the test.
    sys.stdout.flush(); sys.stderr.flush(); os._exit(0)


if __name__ == "__main__":
    main()
