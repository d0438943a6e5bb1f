"""Worker for `tests/test_sampling.py::test_two_processes_split_the_songs` (run under `accelerate launch`).

Samples 3 songs with the tiny models across the processes (`sample_distributed`) and writes, per rank,
which items it sampled and the gathered tokens to `OUT/rank{r}.pt`. Rank 0 also samples rank 1's share
alone (same seed rule) so the test can check the split does not change what an item gets.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, when jukebox_nb is not installed

import torch

from jukebox_nb.conditioning import Metadata  # noqa: E402
from jukebox_nb.checkpoints import Jukebox  # noqa: E402
from jukebox_nb.sampling import (SampleConfig, SampleRequest, _take, accelerate_state, sample,  # noqa: E402
                                 sample_distributed)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    st = accelerate_state()
    models = Jukebox.tiny()
    req = SampleRequest(metadata=[Metadata(artist=i + 1, total_length=1) for i in range(3)], seconds=(34 * 128 + 1) / 44100,
                        levels=(2, 1))
    cfg = SampleConfig(decode=False)
    with st.split_between_processes([0, 1, 2]) as mine: items = list(mine)
    res = sample_distributed(models, req, cfg)
    out = {"items": items, "tokens": res.tokens}
    if st.is_main_process: out["single_rank1_share"] = sample(models, _take(req, [2]), cfg).tokens[2]
    torch.save(out, a.out / f"rank{st.process_index}.pt")
    st.wait_for_everyone()
    # leave no gloo thread for interpreter shutdown to abort ("terminate called without an active exception", seen once)
    if torch.distributed.is_initialized(): torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
