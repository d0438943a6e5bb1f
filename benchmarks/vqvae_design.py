"""Compare VQ-VAE designs for the demo models (issue 15): what each level keeps of held-out music, and how its codes move.

    python benchmarks/vqvae_design.py RUN [RUN ...] --corpus CORPUS [--clips 8] [--seconds 20] [--offset 10]
        [--names A B] [--figure design.jpg]

RUN is a VQ-VAE run folder (its latest checkpoint) or a model folder. For `--clips` held-out pieces of CORPUS (the
split of `MusicDataset`: valid fraction 0.1, seed 0), `--seconds` from `--offset` are encoded at every level and
decoded from each level alone. Printed as one JSON object, per run and level:

- `sc_db`: spectral convergence of the reconstruction (mean over clips; lower is better);
- `stable_pitch`, `key_clarity`, `pulse_clarity`: the musicality measures (a)-(c) of `benchmarks/musicality.py` on
  the reconstruction, beside the same for the originals (`original`): a design whose top level loses the held
  notes cannot give a top prior notes to learn;
- `same_code`: share of consecutive codes that are equal, `run_ms`: mean length of a run of one code in ms, and
  `chance`: the `same_code` of the same codes shuffled in time (codes that hold while a note holds beat chance);
- `codes_used` over all clips and `bits` (entropy of the code histogram): how much of the codebook carries music.

`--figure` also draws spectrograms (log frequency, 70 dB range) of 8 s of three of the clips: the original, then
levels 1 and 2 of each run decoded alone (a design whose top level keeps the notes shows their partials there).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from musicality import SR, measure_clip  # noqa: E402

MEASURES = ("stable_pitch", "key_clarity", "pulse_clarity")


def code_motion(codes: list[np.ndarray], # per clip, [T] codes of one level
                hop_seconds: float, # seconds per code
                seed: int = 0) -> dict:
    "How the codes of one level move: equal neighbours (against shuffled codes), run length, codebook use."
    rng = np.random.default_rng(seed)
    same = np.mean([np.mean(c[1:] == c[:-1]) for c in codes])
    chance = np.mean([np.mean(s[1:] == s[:-1]) for s in (rng.permutation(c) for c in codes)])
    runs = [len(c) / (1 + np.count_nonzero(c[1:] != c[:-1])) for c in codes]
    allc = np.concatenate(codes); p = np.bincount(allc) / len(allc); p = p[p > 0]
    return dict(same_code=round(float(same), 4), chance=round(float(chance), 4),
                run_ms=round(float(np.mean(runs)) * hop_seconds * 1000, 1),
                codes_used=int(len(p)), bits=round(float(-(p * np.log2(p)).sum()), 3))


def held_out_clips(corpus: Path, n: int, seconds: float, offset: float, sr: int) -> list[tuple[str, np.ndarray]]:
    "Up to `n` clips of held-out pieces at `sr` (one per piece, spread over the artists)."
    from jukebox_nb.audio import load_audio
    from jukebox_nb.data import read_metadata, split_tracks
    tracks = read_metadata(corpus / "metadata.jsonl")
    valid = [tracks[i] for i in split_tracks([t.path for t in tracks], 0.1, 0)["valid"]]
    by_artist: dict[str, list] = {}
    for t in valid: by_artist.setdefault(t.artist, []).append(t)
    order = [t for k in range(max(map(len, by_artist.values()), default=0)) for ts in by_artist.values() if k < len(ts) for t in ts[k:k + 1]]
    out = []
    for t in order[:n]:
        x = load_audio(corpus / t.path, sr=sr, mono=True)
        start = int(min(offset, max(0.0, len(x) / sr - seconds)) * sr)
        out.append((t.path, x[start:start + int(seconds * sr)]))
    return out


def measure_run(run: str, corpus: Path, clips: int, seconds: float, offset: float) -> dict:
    import torch
    from jukebox_nb.audio import resample, spectral_convergence_db
    from jukebox_nb.checkpoints import load_pretrained
    from jukebox_nb.training import checkpoint_dirs, vqvae_from_checkpoint
    vq = vqvae_from_checkpoint(run) if checkpoint_dirs(run) else load_pretrained(run, kind="vqvae").eval()
    c, t0 = vq.cfg, time.perf_counter()
    pieces = held_out_clips(corpus, clips, seconds, offset, c.sample_rate)
    top = c.hop_lengths[-1]
    rows = {l: dict(sc=[], codes=[], m=[]) for l in range(c.levels)}
    orig = []
    for _, x in pieces:
        x = x[: len(x) // top * top]
        xt = torch.from_numpy(x)[None, None]
        to_sr = lambda y: resample(np.asarray(y, np.float32), c.sample_rate, SR)
        orig.append(measure_clip(to_sr(x)))
        with torch.no_grad():
            codes = vq.encode(xt, list(range(c.levels)))
            for l in range(c.levels):
                y = vq.decode(codes[l], l)[0, 0]
                rows[l]["sc"].append(float(spectral_convergence_db(xt[0], y[None])[0]))
                rows[l]["codes"].append(codes[l][0].numpy())
                rows[l]["m"].append(measure_clip(to_sr(y.numpy())))
    mean = lambda ms: {k: round(float(np.mean([m[k] for m in ms])), 4) for k in MEASURES}
    out = dict(config=dict(sample_rate=c.sample_rate, hops=list(c.hop_lengths), bins=c.l_bins), clips=[p for p, _ in pieces],
               original=mean(orig), levels={})
    for l, r in rows.items():
        out["levels"][str(l)] = dict(sc_db=round(float(np.mean(r["sc"])), 2), **mean(r["m"]),
                                     **code_motion(r["codes"], c.hop_lengths[l] / c.sample_rate))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def draw(runs: list[str], names: list[str], corpus: Path, path: Path, picks=(0, 2, 6), seconds: float = 8.0, offset: float = 10.0):
    "Spectrograms of `picks` held-out clips: original, then each run's levels 1 and 2 decoded alone; saved to `path`."
    import librosa, librosa.display, torch
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    from jukebox_nb.checkpoints import load_pretrained
    from jukebox_nb.training import checkpoint_dirs, vqvae_from_checkpoint
    vqs = [vqvae_from_checkpoint(r) if checkpoint_dirs(r) else load_pretrained(r, kind="vqvae").eval() for r in runs]
    sr = vqs[0].cfg.sample_rate
    clips = held_out_clips(corpus, max(picks) + 1, seconds, offset, sr)
    fig, axes = plt.subplots(len(picks), 1 + 2 * len(runs), figsize=(4 * (1 + 2 * len(runs)), 3 * len(picks)), squeeze=False)
    for i, k in enumerate(picks):
        name, x = clips[k]
        x = x[: len(x) // max(v.cfg.hop_lengths[-1] for v in vqs) * max(v.cfg.hop_lengths[-1] for v in vqs)]
        rows = [(f"held-out original: {Path(name).name}", x, sr)]
        for n, vq in zip(names, vqs):
            with torch.no_grad():
                for l, c in zip((1, 2), vq.encode(torch.from_numpy(x)[None, None], [1, 2])):
                    rows.append((f"{n}, level {l}", vq.decode(c, l)[0, 0].numpy(), vq.cfg.sample_rate))
        for ax, (title, y, r) in zip(axes[i], rows):
            S = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024, hop_length=256)), ref=np.max)
            librosa.display.specshow(S, sr=r, hop_length=256, y_axis="log", ax=ax, vmin=-70)
            ax.set_title(title, fontsize=8); ax.set_ylim(50, 8000)
    fig.tight_layout()
    from PIL import Image
    import io
    buf = io.BytesIO(); fig.savefig(buf, dpi=60, format="png"); plt.close(fig)
    Image.open(buf).convert("RGB").save(path, quality=70, optimize=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+"); p.add_argument("--corpus", required=True, type=Path)
    p.add_argument("--clips", type=int, default=8); p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--offset", type=float, default=10.0); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--names", nargs="+", help="a name per run for the figure (default: the run paths)")
    p.add_argument("--figure", type=Path, help="also draw spectrograms of three clips (JPEG)")
    a = p.parse_args(argv)
    if a.names and len(a.names) != len(a.runs): p.error(f"--names needs one name per run ({len(a.runs)})")
    import torch
    torch.set_num_threads(a.threads)
    if a.figure: draw(a.runs, a.names or a.runs, a.corpus, a.figure)
    out = {r: measure_run(r, a.corpus, a.clips, a.seconds, a.offset) for r in a.runs}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
