"""Experiment glue shared by the VQ-VAE paper notebooks (`vqvae_restarts`, `vqvae_codebook`, `vqvae_ablations`).

Not part of the library: sizes, corpus and run folders, held-out clips and Figure 4's spectrogram grid for
paper §5.4 at small scale. The notebooks import it from their own folder (`nbs/paper/`).
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jukebox_nb.audio import SAMPLE_RATE, example_clip, load_audio, save_wav
from jukebox_nb.core import atomic_write
from jukebox_nb.corpus import build_corpus
from jukebox_nb.data import MusicDataset, Track, read_metadata, write_metadata
from jukebox_nb.training import TrainConfig, read_metrics, train
from jukebox_nb.vqvae import VQVAE, VQVAEConfig, measure_bandwidth

PACKAGES = ("wesnoth-1.16-music", "singularity-music")  # 57 tracks, 192 min (GPL-2+ / CC-BY-SA 3.0)
LEVEL_NAMES = ("bottom (hop 8)", "middle (hop 32)", "top (hop 128)")


@dataclass(frozen=True)
class Setup:
    "Sizes of one experiment run."
    model: dict  # overrides of the `mini` VQ-VAE preset
    steps: int  # optimizer steps per training run
    batch_size: int = 4
    sample_length: int = 8192  # training crop, samples (a multiple of the top hop)
    lr: float = 5e-4
    warmup_steps: int = 50
    log_every: int = 10  # metrics.csv rows (Figure 5's resolution)
    n_clips: int = 32  # held-out evaluation clips
    clip_seconds: float = 3.0
    threshold_ratio: float = 16.0  # a code is dead below 1/ratio of the mean vectors per code and step
    seed: int = 0


# the real experiments' size: one CPU thread, well under an hour per notebook
REAL = Setup(model=dict(width=16, depth=2), steps=600)
# the smoke tests' size: the whole code path in seconds
SMOKE = Setup(model=dict(width=4, depth=1, emb_width=8, l_bins=16, linf_k=64), steps=2, batch_size=2, sample_length=4096,
              warmup_steps=1, log_every=1, n_clips=2, clip_seconds=0.5)


def level_thresholds(cfg: VQVAEConfig, setup: Setup) -> tuple[float, ...]:
    "Per-level restart threshold: 1/ratio of the mean number of vectors a code gets per training step."
    return tuple(setup.batch_size * setup.sample_length / (hop * cfg.l_bins) / setup.threshold_ratio for hop in cfg.hop_lengths)


def model_config(setup: Setup, bandwidth: dict, **overrides) -> VQVAEConfig:
    "The experiment's VQ-VAE config (`mini` preset, `setup.model`, `overrides`) with thresholds scaled to the batch."
    cfg = VQVAEConfig.preset("mini", **{**setup.model, **overrides})
    return dataclasses.replace(cfg, revival_threshold=level_thresholds(cfg, setup), bandwidth=bandwidth)


def training_bandwidth(corpus: Path, setup: Setup, n: int = 64) -> dict:
    "Loss normalisers measured from the first `n` training crops (as `training.train_vqvae` does)."
    ds = MusicDataset(corpus, setup.sample_length, split="train", seed=setup.seed)
    return measure_bandwidth(ds[i]["audio"][None] for i in range(min(n, len(ds))))


def train_run(name: str, # run name (the folder gets a hash of everything that shapes the run appended)
              cfg: VQVAEConfig, setup: Setup, corpus: Path, runs: Path,
              model_cls=VQVAE, # `VQVAE` or `HierarchicalVQVAE`
             ) -> tuple[torch.nn.Module, Path, float]: # model in eval mode, run folder, wall seconds of this call
    "Train one run with the library's Accelerate loop, or reuse (resume) the run with the same hash."
    key = json.dumps([model_cls.__name__, cfg.to_dict(), dataclasses.asdict(setup), (corpus / "metadata.jsonl").read_text()],
                     sort_keys=True, default=str)
    out = Path(runs) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    tcfg = TrainConfig(total_steps=setup.steps, batch_size=setup.batch_size, lr=setup.lr, warmup_steps=setup.warmup_steps,
                       log_every=setup.log_every, ckpt_every=200, keep_last=1, seed=setup.seed, out_dir=str(out))
    ds = MusicDataset(corpus, setup.sample_length, split="train", seed=setup.seed)
    t0 = time.perf_counter()
    res = train(lambda all_reduce: model_cls(cfg, all_reduce=all_reduce), ds, tcfg, progress=False)
    return res.model.eval(), out, time.perf_counter() - t0


def run_seconds(run: Path) -> float:
    "Training time recorded in a run's metrics.csv (summed over resumed segments)."
    total = prev = 0.0
    for s in (r["seconds"] for r in read_metrics(run / "metrics.csv")):
        if s < prev: total += prev  # `seconds` restarts at 0 when a run resumes
        prev = s
    return total + prev


def heldout_clips(corpus: Path, setup: Setup, hop: int = 128) -> torch.Tensor:
    "Fixed clips [N, 1, T] spread evenly over the held-out tracks (picked as `training.evaluate_vqvae` picks them)."
    n = int(setup.clip_seconds * SAMPLE_RATE) // hop * hop
    ds = MusicDataset(corpus, n, split="valid", seed=setup.seed)
    idx = np.linspace(0, len(ds) - 1, min(setup.n_clips, len(ds))).round().astype(int)
    return torch.stack([ds[int(i)]["audio"] for i in idx])


def rounded(metrics: dict, digits: int = 4) -> dict:
    "`level_metrics` output with string level keys and rounded floats (JSON-ready)."
    return {str(l): {k: round(v, digits) if isinstance(v, float) else v for k, v in m.items()} for l, m in metrics.items()}


def curves(run: Path, levels: int) -> dict[str, list[float]]:
    "Per-level batch entropy and codes used over training, from the run's metrics.csv (Figure 5's data)."
    rows = read_metrics(run / "metrics.csv")
    keys = [f"{k}/{l}" for k in ("entropy", "used") for l in range(levels) if f"{k}/{l}" in rows[0]]
    return {"step": [r["step"] for r in rows], **{k: [round(r[k], 4) for r in rows] for k in keys}}


def corpus_info(corpus: Path, seed: int = 0) -> dict:
    "Size of the corpus and its held-out tracks."
    ds = MusicDataset(corpus, 4096, split="valid", seed=seed)
    tracks = read_metadata(corpus / "metadata.jsonl")
    minutes = sum(ds.cache.frames.get(t.path, 0) for t in tracks) / SAMPLE_RATE / 60
    return dict(tracks=len(tracks), minutes=round(minutes, 1), valid_tracks=[tracks[i].path for i in ds.track_ids])


def toy_corpus(root: Path) -> Path:
    "Four 2 s tracks for smoke tests: three pieces of the bundled clip and a two-tone chord."
    clip, sr = load_audio(example_clip()), SAMPLE_RATE
    t = np.arange(2 * sr) / sr
    pieces = [clip[:2 * sr], clip[int(1.5 * sr):int(3.5 * sr)], clip[-2 * sr:],
              0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 331 * t)]
    tracks = []
    for i, x in enumerate(pieces):
        save_wav(root / f"audio/t{i}.wav", x.astype(np.float32), sr)
        tracks.append(Track(f"audio/t{i}.wav", "toy", ("test",), f"toy {i}", "CC0", "jukebox_nb bundled clip / synthetic"))
    write_metadata(root / "metadata.jsonl", tracks)
    return root


def corpus_dir() -> Path:
    "The corpus named by JUKEBOX_PAPER_CORPUS, else one built from `PACKAGES` at the repository's data/ (once)."
    if os.environ.get("JUKEBOX_PAPER_CORPUS"): return Path(os.environ["JUKEBOX_PAPER_CORPUS"])
    root = Path(__file__).resolve().parents[2] / "data" / "paper-corpus"
    if not (root / "metadata.jsonl").exists(): print(build_corpus(root, packages=PACKAGES))
    return root


def runs_dir() -> Path:
    "Where training runs go: JUKEBOX_PAPER_RUNS, else runs/paper-vqvae at the repository root (git-ignored)."
    return Path(os.environ.get("JUKEBOX_PAPER_RUNS", Path(__file__).resolve().parents[2] / "runs" / "paper-vqvae"))


def provenance(notebook: str, t0: float) -> dict:
    "Where, when and how a results file was made (`t0`: `time.perf_counter()` at the start)."
    return dict(notebook=f"nbs/paper/{notebook}", command=f"nbdev_test --path nbs/paper/{notebook} --flags slow",
                date=datetime.datetime.now().isoformat(timespec="seconds"), torch=torch.__version__,
                threads=torch.get_num_threads(), machine=f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs",
                load_average=[round(v, 2) for v in os.getloadavg()], wall_seconds=round(time.perf_counter() - t0, 1))


def save_results(path: Path, results: dict) -> Path:
    "Write a results JSON atomically."
    with atomic_write(path, "w") as f: json.dump(results, f, indent=1)
    return path


def bright_clip(clips: torch.Tensor) -> int:
    "Index of the clip [N, 1, T] with the most spectral energy above 4 kHz (losing the highs shows there)."
    S = torch.stft(clips[:, 0], 2048, 512, window=torch.hann_window(2048), return_complex=True).abs()  # [N, F, frames]
    return int(S[:, 2048 * 4000 // SAMPLE_RATE:].pow(2).sum((1, 2)).argmax())


def mel_db(x, ref: float) -> np.ndarray:
    "Mel spectrogram [128, frames] in dB relative to the power `ref`."
    import librosa
    S = librosa.feature.melspectrogram(y=np.asarray(x, dtype=np.float32).reshape(-1), sr=SAMPLE_RATE, n_fft=2048,
                                       hop_length=512, n_mels=128)
    return librosa.power_to_db(S, ref=ref, top_db=None)


def spectrogram_grid(x, # the original clip [T]
                     rows: dict, # row name -> three waveforms [T] (bottom, middle, top; None leaves a cell empty)
                     path: Path | None = None, # PNG to write (dpi 80, 64 colours: spectrograms compress badly)
                    ):
    "Figure 4's layout: the ground truth, then one row per model, one column per level; dB relative to the original's peak."
    import librosa, librosa.display, matplotlib.pyplot as plt
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    ref = float(librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=128).max())
    fig, axes = plt.subplots(len(rows) + 1, 3, figsize=(8, 1.35 * (len(rows) + 1)), sharex=True, sharey=True, squeeze=False)
    for r, (name, ys) in enumerate([("ground truth", [x] * 3), *rows.items()]):
        for c, y in enumerate(ys):
            ax = axes[r, c]
            if y is None: ax.axis("off"); continue
            librosa.display.specshow(mel_db(y, ref), sr=SAMPLE_RATE, hop_length=512, x_axis="time", y_axis="mel",
                                     ax=ax, vmin=-80, vmax=0, cmap="magma")
            ax.set_title(f"{name} — {LEVEL_NAMES[c]}" if r else name, fontsize=7)
            ax.set(xlabel="", ylabel=""); ax.tick_params(labelsize=6)
    fig.tight_layout(pad=0.4)
    if path is not None: save_png(fig, path)
    return fig


def save_png(fig, path: Path, colors: int = 64) -> Path:
    "Save a figure at dpi 80 as a palette PNG (small enough to commit)."
    import io
    from PIL import Image
    buf = io.BytesIO(); fig.savefig(buf, dpi=80, format="png"); buf.seek(0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f: Image.open(buf).convert("RGB").quantize(colors=colors).save(f, format="PNG", optimize=True)
    return Path(path)
