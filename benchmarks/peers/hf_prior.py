"""Side-by-side sampling speed: the Hugging Face `transformers` Jukebox port (`JukeboxPrior.sample`, the top
prior) vs ours at the `peer-small` size (random weights, interleaved runs). Prints JSON.

The port is NOT part of this repository and was removed from transformers 5; install the last release that
has it somewhere outside the project venv and put it on PYTHONPATH, e.g.
    pip install --target /work/scratch/hf --no-deps "transformers==4.57.6" "tokenizers==0.22.*" regex "huggingface-hub==0.36.0"
    PYTHONPATH=/work/scratch/hf python benchmarks/peers/hf_prior.py --batch 1
Both sides sample `--tokens` tokens from the start of a window; the HF call includes its one-off
conditioning (label embedding), ours its prefill; both are small next to the token loop.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# OpenMP threads that spin while waiting collapse on a shared CPU (other jobs hold the cores they wait for);
# passive waiting must be chosen before torch loads the OpenMP runtime. Override with OMP_WAIT_POLICY=ACTIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

import sampling as ours  # noqa: E402  (benchmarks/sampling.py)
from peers.side_by_side import compare  # noqa: E402
from jukebox_nb.decode import DecodeStep  # noqa: E402
from jukebox_nb.sampling import draw  # noqa: E402


def hf_prior(cfg):
    "The HF top prior at `cfg`'s size (labels without lyrics, row/column/previous-row attention)."
    from transformers import JukeboxPrior, JukeboxPriorConfig
    hc = JukeboxPriorConfig(level=0, attention_pattern="raw_column_previous_row_attention", blocks=cfg.blocks, num_layers=cfg.depth, hidden_size=cfg.width,
                            n_heads=cfg.heads, n_ctx=cfg.n_ctx, music_vocab_size=cfg.bins, init_scale=cfg.init_scale,
                            is_encoder_decoder=False, nb_relevant_lyric_tokens=0, merged_decoder=False,
                            metadata_dims=[cfg.n_genres, cfg.n_artists], max_nb_genres=cfg.max_bow_genre_size,
                            timing_dims=cfg.t_bins, min_duration=cfg.min_duration, max_duration=cfg.max_duration)
    torch.manual_seed(0)
    return JukeboxPrior(hc, level=0, nb_priors=3).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="peer-small")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=255)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = ours.config(a.preset)
    hf = hf_prior(cfg)
    mine = ours.build(a.preset, torch.device("cpu"), torch.float32)
    B, n = a.batch, a.tokens
    labels = torch.tensor([[cfg.sample_length * 4, 0, cfg.sample_length, 1, 1]] * B)  # total, offset, length, artist, genre
    cond = ours.conditioning(mine, B, "cpu")
    step, g = DecodeStep(mine, torch.float32), torch.Generator().manual_seed(0)
    devnull = open(os.devnull, "w")
    def run_hf():
        err, out, sys.stderr, sys.stdout = sys.stderr, sys.stdout, devnull, devnull  # tqdm bar
        t, c = time.perf_counter(), time.process_time()
        try:
            with torch.no_grad(): hf.sample(B, metadata=labels, sample_tokens=n)
        finally: sys.stderr, sys.stdout = err, out
        return time.perf_counter() - t, time.process_time() - c
    def run_ours():
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            st = mine.start(cond, B)
            logits = step.prefill(st, torch.zeros(B, 0, dtype=torch.long))
            for _ in range(n - 1): logits = step(draw(logits, generator=g), st)
            draw(logits, generator=g)
        return time.perf_counter() - t, time.process_time() - c
    out = compare({"hf": run_hf, "ours": run_ours}, {"hf": n, "ours": n}, B, a.repeats, preset=a.preset, n_tokens=n,
                  threads=a.threads, params_hf=sum(q.numel() for q in hf.parameters()),
                  params_ours=sum(q.numel() for q in mine.parameters()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
