"""Musicality: measures of generated audio that a listener would hear, next to real clips and noise (issue 15).

    python benchmarks/musicality.py samples --models MODELS --corpus CORPUS --out SAMPLES_DIR [--n 8] [--seconds 20]
    python benchmarks/musicality.py audio SAMPLES... --reference REF_DIR [--seconds 20] [--noise]
    python benchmarks/musicality.py labels --corpus CORPUS --samples SAMPLES_DIR [--label artist]
    python benchmarks/musicality.py bits --models MODELS --codes CODES [--split valid] [--contexts 8 32 128 256 512 896] [--labels]
    python benchmarks/musicality.py continuation --models MODELS --corpus CORPUS [--pieces 6]
    python benchmarks/musicality.py upsample --models MODELS --corpus CORPUS --out DIR [--pieces 0] [--seconds 10] [--from-level 1]
    python benchmarks/musicality.py copying --models MODELS --corpus CORPUS --codes CODES [--n 24] [--seed 100]

Each command prints one JSON object. SAMPLES and REF_DIR are WAV/FLAC/OGG files or folders of them (a folder
written by `jukebox-nb demo` counts as its `sample_level_0.wav`). Every clip is read as mono at 22,050 Hz, at most
`--seconds` from `--offset` (default 0).

(a) `stable_pitch` -- share of the clip's frames in which a sustained partial sounds. A constant-Q spectrum
    (C2 = 65.4 Hz to C8, 36 bins per octave, filters half the usual length: 0.1 s at C4, 0.4 s at C2; hop 512 =
    23 ms) is searched for *peaks*: a bin that is a local
    maximum, at least 12 dB above the median of the half octave each side of it, and no more than 50 dB below the
    clip's loudest bin. A frame counts when one of its peaks belongs to a *track*: peaks within a third of a
    semitone of each other in at least 6 consecutive frames (139 ms). Sustained notes of any instrument, also in
    chords, make such tracks; noise rarely does, nor a run of 60 ms notes (full-length filters smeared those into
    held pitches: 64% of frames, against 7% now). We chose this over `librosa.pyin` because pyin is monophonic
    (it found a pitch in only 22% of the bundled polyphonic clip) and slow (13 s for 20 s on one core, against
    0.3 s here). `stable_tracks_per_s` counts the tracks (a note with several partials makes several).
(b) `key_clarity` -- the Pearson correlation of the clip's mean chroma (`librosa.feature.chroma_cqt`) with the best
    of the 24 Krumhansl–Kessler key profiles (12 major, 12 minor), and that key. On its own it does not reject
    noise: the mean chroma of noise is nearly flat and its random ripple correlates with some key (about 0.5), so
    read it with (a) and (c).
(c) `pulse_clarity` -- the highest normalised autocorrelation of the onset-strength envelope
    (`librosa.onset.onset_strength`, hop 512, smoothed by a Gaussian of one frame so that a beat period between
    two whole frames is not split, mean removed) at lags from 0.25 s to 2 s, and that lag (`pulse_s`).
(d) label recognisability (`labels`) -- a logistic regression (scikit-learn, standardised features) on mel and
    chroma statistics (mean and standard deviation over time of 64 log-mel bands and 12 chroma bins) of 10 s clips
    of the corpus's training pieces, one class per artist (or genre: the piece's genres joined by spaces). It
    reports its accuracy on clips of the held-out pieces (what the classifier can do) and on the samples, each
    scored against the label it was asked for (`labels.jsonl` in the samples folder: {"path", "artist", "genre"}
    per line; a demo folder's `summary.json` also works). Chance is 1 / number of classes. With `--through VQVAE`
    every real clip is first encoded and decoded at `--through-level` by that VQ-VAE, so that a classifier judging
    samples decoded from one level learns what each label sounds like through that level's decoder (a classifier
    of real clips may call every level-2 decoding one class whatever was asked).
(e) held-out bits per code by position in the top prior's window (`bits`): `training.evaluate_prior(by_position=
    True)` on codes cached by `jukebox-nb encode-codes`, summarised over octave bands of positions (0, 1, 2-3, ...,
    512-1023), with `falling_past_128` = bits in [128, 256) minus bits in the last band (positive: the prior still
    gains from context beyond 128 codes). Position in the window is not the only thing that changes along it: a
    window is clamped to end at its piece's end, so its last positions hold more endings (and tail silence) than its
    first, and their bits tell of the endings as much as of the context. `--contexts L...` adds the unconfounded
    test (`context`): blocks of `--block` codes of each held-out piece (every `--stride` codes) are scored from
    windows that start L codes before the block, for every L on the same blocks; it reports the mean bits per L,
    each L's difference from the largest L up to 128 (the issue's mark) with its standard error, and the share of
    blocks that L predicts better.
    `--labels` adds the prior's side of (d) (`labels`): the same evenly spaced held-out windows are scored under
    every (artist, genres) pair of the corpus's pieces in turn. `gain` is the mean bits under the other pairs minus
    under the window's own (what the labels are worth to the prior, bits per code), and `accuracy` the share of
    windows whose own pair gives the fewest bits (the prior used as a classifier; chance 1 / pairs). A prior that
    ignores its labels scores gain 0 and picks a pair no better than chance, and then no sampling can make the
    label heard.
(f) continuation (`continuation`): for each held-out piece, 5 s at `--start` are the prompt; the models continue
    it for 10 s (top level only, decoded by the VQ-VAE, unless `--levels 2 1 0`). `agreement` is the cosine
    similarity of the continuation's mean chroma with that of the piece's true next 10 s; `baseline` the mean of
    its similarity with the true next 10 s of each *other* held-out piece. The same two numbers for the prompt
    itself (`prompt_agreement`, `prompt_baseline`) show how much a continuation that keeps the key could reach.
(g) copying (`copying`): does the top prior play back its training pieces? `--n` requests at the top level (as
    `samples` asks: each (artist, genre) of the corpus in turn, seeds from `--seed`) give level-2 codes, never
    decoded. For each length n in 8, 16, ..., 256 codes (0.19-12 s at hop 512 and 22.05 kHz) it reports the share of
    a clip's runs of n consecutive codes that occur somewhere in a training piece's level-2 codes (cached by
    `jukebox-nb encode-codes`), and the longest such n per clip. The same for `--seconds` of each held-out piece
    from 5 s is the baseline: new music of the same kind, encoded by the same VQ-VAE, shares some runs by chance
    (held tones, rests, chorale tunes that the corpus harmonises more than once). A prior that memorised its
    corpus scores far above the baseline at the long lengths.

`samples` writes what the other commands measure: `--n` samples of `--seconds` through all levels (or `--levels`),
the k-th asking for the k-th (artist, genre) pair of the corpus's pieces in turn, with seed `--seed` + k; WAV files
and `labels.jsonl` ({"path", "artist", "genre", "seed", "seconds_taken"} per line) in `--out`.

`upsample` asks what the upsamplers let through, with no top prior involved: for each held-out piece (`--pieces`,
0 = all) it encodes `--seconds` from `--start` at the top level, lets the upsamplers sample the lower levels from
those real codes at the models' demo temperatures, and reports (a)-(c) of the real clips, of the top level's own
decoding, of the upper upsampler's level decoded on its own (`level_1`) and of the upsampled audio, with how many of
the latter lie inside the real clips' range. Its `--out`
holds `sample_K.wav` (upsampled), `top_K.wav` and `labels.jsonl`, so `labels --samples OUT` gives (d) for them. No
top prior's samples through all levels can be expected to do better than these.

The measure functions take a mono float array and its rate and are imported by tests/test_musicality.py.
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

SR = 22050  # every clip is measured at this rate
HOP = 512  # analysis hop (23 ms)
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


# ---------------------------------------------------------------- (a) stable pitch
def _runs(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    "Start and end (exclusive) of each run of True in a boolean row."
    d = np.diff(np.r_[0, row.astype(np.int8), 0])
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def stable_pitch(y: np.ndarray, # mono audio
                 sr: int = SR, # its sample rate
                 min_prominence_db: float = 12.0, # how far a peak stands above the local median spectrum
                 min_frames: int = 6, # frames a track must last (6 x 23 ms = 139 ms)
                 floor_db: float = -50.0, # peaks quieter than this (re the loudest bin) are ignored
                ) -> dict:
    "Share of frames with a sustained spectral peak (a held pitch), and tracks per second (measure (a))."
    import librosa
    from scipy.ndimage import maximum_filter1d, median_filter
    if len(y) < HOP * min_frames or not np.any(np.abs(y) > 1e-6): return dict(stable_pitch=0.0, stable_tracks_per_s=0.0)
    bpo = 36  # 3 bins per semitone
    C = np.abs(librosa.cqt(y.astype(np.float32), sr=sr, hop_length=HOP, fmin=65.406, n_bins=6 * bpo, bins_per_octave=bpo,
                           filter_scale=0.5))  # half-length filters: 0.1 s at C4, so a 60 ms note is not smeared into a held one
    D = librosa.amplitude_to_db(C, ref=np.max)  # [bins, frames]
    base = median_filter(D, size=(bpo + 1, 1), mode="nearest")  # median over +-half an octave
    up, down = np.r_[D[1:], D[-1:]], np.r_[D[:1], D[:-1]]
    peak = (D >= up) & (D >= down) & (D - base >= min_prominence_db) & (D > floor_db)
    near = maximum_filter1d(peak.astype(np.uint8), 3, axis=0).astype(bool)  # within 1/3 semitone
    held, n_tracks = np.zeros_like(peak), 0
    for b in np.flatnonzero(near.any(1)):
        for s, e in zip(*_runs(near[b])):
            if e - s >= min_frames: held[b, s:e] = True; n_tracks += 1
    frames = (held & peak).any(0)
    return dict(stable_pitch=float(frames.mean()), stable_tracks_per_s=n_tracks / (len(y) / sr))


# ---------------------------------------------------------------- (b) key clarity
def key_profiles() -> tuple[np.ndarray, list[str]]:
    "The 24 Krumhansl–Kessler profiles as rows [24, 12] (C major first) and their key names."
    rows = [np.roll(p, k) for p in (KK_MAJOR, KK_MINOR) for k in range(12)]
    names = [f"{PITCH_NAMES[k]} {m}" for m in ("major", "minor") for k in range(12)]
    return np.stack(rows), names


def key_clarity(y: np.ndarray, # mono audio
                sr: int = SR, # its sample rate
               ) -> dict:
    "Correlation of the mean chroma with the best-matching key profile, and that key (measure (b))."
    import librosa
    chroma = librosa.feature.chroma_cqt(y=y.astype(np.float32), sr=sr, hop_length=HOP, tuning=0.0).mean(1)
    return key_of_chroma(chroma)


def key_of_chroma(chroma: np.ndarray, # [12] pitch-class weights, C first
                 ) -> dict:
    "Best Krumhansl–Kessler key of a chroma vector and its Pearson correlation (0 for a flat vector)."
    if np.ptp(chroma) < 1e-9: return dict(key_clarity=0.0, key="none")
    prof, names = key_profiles()
    r = [float(np.corrcoef(chroma, p)[0, 1]) for p in prof]
    k = int(np.argmax(r))
    return dict(key_clarity=r[k], key=names[k])


# ---------------------------------------------------------------- (c) pulse clarity
def pulse_clarity(y: np.ndarray, # mono audio
                  sr: int = SR, # its sample rate
                  min_lag_s: float = 0.25, max_lag_s: float = 2.0, # the lags searched
                 ) -> dict:
    "Highest normalised autocorrelation of the onset envelope at lags in [min_lag_s, max_lag_s], and that lag (measure (c))."
    import librosa
    env = librosa.onset.onset_strength(y=y.astype(np.float32), sr=sr, hop_length=HOP)
    return pulse_of_envelope(env, sr / HOP, min_lag_s, max_lag_s)


def pulse_of_envelope(env: np.ndarray, # onset strength per frame
                      fps: float, # frames per second
                      min_lag_s: float = 0.25, max_lag_s: float = 2.0,
                     ) -> dict:
    "Normalised autocorrelation peak of an envelope between two lags (0 when too short or constant)."
    from scipy.ndimage import gaussian_filter1d
    x = gaussian_filter1d(np.asarray(env, dtype=np.float64), 1.0)  # a beat period is rarely a whole number of frames
    x = x - x.mean()
    lo, hi = int(round(min_lag_s * fps)), int(round(max_lag_s * fps))
    if len(x) <= lo + 1 or not np.any(x): return dict(pulse_clarity=0.0, pulse_s=0.0)
    n = 1 << int(np.ceil(np.log2(2 * len(x))))
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, n)) ** 2)[: len(x)]
    ac = ac / ac[0]
    seg = ac[lo: min(hi, len(x) - 1) + 1]
    k = int(np.argmax(seg))
    return dict(pulse_clarity=float(seg[k]), pulse_s=(lo + k) / fps)


def measure_clip(y: np.ndarray, sr: int = SR) -> dict:
    "Measures (a), (b) and (c) of one clip."
    return {**stable_pitch(y, sr), **key_clarity(y, sr), **pulse_clarity(y, sr)}


# ---------------------------------------------------------------- (d) label recognisability
def clip_features(y: np.ndarray, sr: int = SR) -> np.ndarray:
    "Mean and standard deviation over time of 64 log-mel bands and 12 chroma bins: a [152] vector."
    import librosa
    y = y.astype(np.float32)
    mel = np.log(librosa.feature.melspectrogram(y=y, sr=sr, hop_length=HOP, n_mels=64) + 1e-6)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, hop_length=HOP, tuning=0.0)
    return np.concatenate([mel.mean(1), mel.std(1), chroma.mean(1), chroma.std(1)])


def fit_label_classifier(X: np.ndarray, # [N, F] features
                         labels: list[str], # N labels
                        ):
    "A standardised logistic regression from features to labels (scikit-learn)."
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if len(set(labels)) < 2: raise ValueError(f"label recognisability needs at least 2 labels among the training clips, got {sorted(set(labels))}")
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(X, labels)


def accuracy(clf, X: np.ndarray, labels: list[str]) -> float:
    "Share of rows of `X` that `clf` labels as given (nan for none)."
    return float(np.mean(clf.predict(X) == np.asarray(labels))) if len(labels) else float("nan")


# ---------------------------------------------------------------- (e) bits by position
def position_bands(bits: np.ndarray, # [n_ctx] mean bits at each position of the window
                  ) -> dict:
    "Mean bits over octave bands of positions (0, 1, 2-3, 4-7, ...), and the fall from [128, 256) to the last band."
    bits = np.asarray(bits, dtype=np.float64)
    bands, lo = {}, 0
    while lo < len(bits):
        hi = min(2 * lo if lo else 1, len(bits))  # [0], [1], [2, 4), [4, 8), ...
        bands[f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo)] = float(bits[lo:hi].mean())
        lo = hi
    last = list(bands.values())[-1]
    fall = float(bits[128:256].mean() - last) if len(bits) > 256 else float("nan")
    return dict(bands=bands, falling_past_128=fall)


# ---------------------------------------------------------------- (f) continuation
def mean_chroma(y: np.ndarray, sr: int = SR) -> np.ndarray:
    "Mean chroma over a clip (`chroma_cqt`), [12]."
    import librosa
    return librosa.feature.chroma_cqt(y=y.astype(np.float32), sr=sr, hop_length=HOP, tuning=0.0).mean(1)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    "Cosine similarity of two vectors (0 if either is zero)."
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n > 0 else 0.0


def agreement_vs_others(cont: list[np.ndarray], # [P] mean chroma of each piece's continuation
                        true: list[np.ndarray], # [P] mean chroma of each piece's true next stretch
                       ) -> dict:
    "Mean cosine of each continuation with its own piece and with the other pieces (needs >= 2 pieces)."
    P = len(cont)
    if P < 2 or len(true) != P: raise ValueError(f"need the same number (>= 2) of continuations and true stretches, got {P} and {len(true)}")
    own = [cosine(cont[i], true[i]) for i in range(P)]
    other = [np.mean([cosine(cont[i], true[j]) for j in range(P) if j != i]) for i in range(P)]
    return dict(agreement=float(np.mean(own)), baseline=float(np.mean(other)), per_piece=[round(a - b, 4) for a, b in zip(own, other)])


# ---------------------------------------------------------------- files
def load_clip(path, seconds: float = 20.0, offset: float = 0.0) -> np.ndarray:
    "Mono audio at `SR` of at most `seconds` from `offset` (earlier when the file is shorter)."
    import librosa
    import soundfile as sf
    dur = sf.info(str(path)).duration
    offset = max(0.0, min(offset, dur - seconds))
    y, _ = librosa.load(str(path), sr=SR, mono=True, offset=offset, duration=seconds)
    return y


def audio_files(items) -> list[Path]:
    "The audio files named by `items` (files, folders of them, or `jukebox-nb demo` folders)."
    out = []
    for it in map(Path, items):
        if it.is_dir() and (it / "summary.json").is_file() and (it / "sample_level_0.wav").is_file(): out.append(it / "sample_level_0.wav")
        elif it.is_dir(): out += sorted(p for p in it.rglob("*") if p.suffix.lower() in AUDIO_EXT)
        elif it.is_file(): out.append(it)
        else: raise SystemExit(f"musicality: {it} does not exist; give audio files or folders of them")
    return out


def noise_clip(seconds: float, seed: int = 0) -> np.ndarray:
    "White noise at -20 dBFS RMS."
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def summarise(rows: list[dict], keys=("stable_pitch", "key_clarity", "pulse_clarity")) -> dict:
    "Min, median and max of each measure over rows."
    return {k: dict(min=min(r[k] for r in rows), median=float(np.median([r[k] for r in rows])), max=max(r[k] for r in rows))
            for k in keys} if rows else {}


def inside(row: dict, ref: dict, keys=("stable_pitch", "key_clarity", "pulse_clarity")) -> bool:
    "Whether a clip lies inside the reference range on every measure."
    return all(ref[k]["min"] <= row[k] <= ref[k]["max"] for k in keys)


def _rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def cmd_audio(args) -> dict:
    t0 = time.perf_counter()
    def measured(files, offset):
        return [{"file": str(p), **_rounded(measure_clip(load_clip(p, args.seconds, offset)))} for p in files]
    samples = measured(audio_files(args.samples), args.offset)
    out = dict(command="audio", seconds=args.seconds, samples=samples, samples_summary=summarise(samples))
    if args.reference:
        ref = measured(audio_files(args.reference), args.offset if args.reference_offset is None else args.reference_offset)
        out.update(reference=ref, reference_summary=summarise(ref))
        flags = [inside(r, out["reference_summary"]) for r in samples]
        out["samples_inside_reference"] = f"{sum(flags)}/{len(flags)}"
    if args.noise: out["white_noise"] = _rounded(measure_clip(noise_clip(args.seconds)))
    out["seconds_per_clip"] = round((time.perf_counter() - t0) / max(1, len(samples) + len(out.get("reference", [])) + args.noise), 3)
    return out


def _corpus_tracks(corpus: Path, valid_fraction: float, seed: int):
    from jukebox_nb.data import read_metadata, split_tracks
    tracks = read_metadata(corpus / "metadata.jsonl")
    parts = split_tracks([t.path for t in tracks], valid_fraction, seed)
    return [tracks[i] for i in parts["train"]], [tracks[i] for i in parts["valid"]]


def _label(track_or_doc, key: str) -> str:
    if isinstance(track_or_doc, dict):
        v = track_or_doc.get(key)
        return " ".join(v) if isinstance(v, list) else str(v)
    return track_or_doc.artist if key == "artist" else " ".join(track_or_doc.genres)


def _track_clips(corpus: Path, track, n: int, seconds: float) -> list[np.ndarray]:
    import soundfile as sf
    dur = sf.info(str(corpus / track.path)).duration
    starts = np.linspace(0, max(0.0, dur - seconds), n + 2)[1:-1] if dur > seconds else [0.0]
    return [load_clip(corpus / track.path, seconds, float(s)) for s in starts]


def _asked_labels(folder: Path, key: str) -> list[tuple[Path, str]]:
    "(audio file, asked label) of each sample in a folder: its labels.jsonl, or demo folders' summary.json."
    if (folder / "labels.jsonl").is_file():
        rows = [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines() if l.strip()]
        return [(folder / r["path"], _label(r, key)) for r in rows]
    demos = [d for d in sorted([folder, *folder.iterdir()]) if d.is_dir() and (d / "summary.json").is_file()]
    if not demos: raise SystemExit(f"musicality: {folder} has no labels.jsonl ({{\"path\", \"artist\", \"genre\"}} per line) and no demo folders")
    return [(d / "sample_level_0.wav", _label(json.loads((d / "summary.json").read_text()), key)) for d in demos]


def through_vqvae(folder, level: int):
    "A function clip -> the clip encoded and decoded at `level` by the VQ-VAE in `folder` (at the model's rate), at `SR`."
    import librosa, torch
    from jukebox_nb.checkpoints import load_pretrained
    vq = load_pretrained(folder, kind="vqvae").eval(); sr, hop = vq.cfg.sample_rate, vq.cfg.hop_lengths[-1]
    def f(y: np.ndarray) -> np.ndarray:
        x = librosa.resample(y.astype(np.float32), orig_sr=SR, target_sr=sr) if sr != SR else y.astype(np.float32)
        x = torch.from_numpy(x[: len(x) // hop * hop])[None]
        with torch.inference_mode(): z = vq.decode(vq.encode(x, levels=level), level).reshape(-1).numpy()
        return librosa.resample(z, orig_sr=sr, target_sr=SR) if sr != SR else z
    return f


def cmd_labels(args) -> dict:
    corpus = Path(args.corpus)
    train, valid = _corpus_tracks(corpus, args.valid_fraction, args.split_seed)
    prep = through_vqvae(args.through, args.through_level) if args.through else (lambda y: y)  # the real clips as a level sounds
    def feats(tracks):
        X, y = [], []
        for t in tracks:
            for c in _track_clips(corpus, t, args.clips_per_piece, args.clip_seconds): X.append(clip_features(prep(c))); y.append(_label(t, args.label))
        return np.array(X), y
    Xt, yt = feats(train)
    clf = fit_label_classifier(Xt, yt)
    Xv, yv = feats(valid)
    out = dict(command="labels", label=args.label, through=f"{args.through} level {args.through_level}" if args.through else None,
               classes=sorted(set(yt)), chance=1 / len(set(yt)),
               train_clips=len(yt), train_accuracy=accuracy(clf, Xt, yt), held_out_clips=len(yv),
               held_out_accuracy=accuracy(clf, Xv, yv) if yv else None)
    if args.samples:
        asked = _asked_labels(Path(args.samples), args.label)
        unknown = sorted({l for _, l in asked} - set(yt))
        if unknown: raise SystemExit(f"musicality: samples ask for {unknown}, which no training piece has; classes are {sorted(set(yt))}")
        Xs = np.array([clip_features(load_clip(p, args.clip_seconds)) for p, _ in asked])
        pred = clf.predict(Xs)
        out.update(samples=[dict(file=str(p), asked=l, predicted=str(q)) for (p, l), q in zip(asked, pred)],
                   sample_accuracy=accuracy(clf, Xs, [l for _, l in asked]))
    return out


def _label_ids(models: Path) -> dict:
    names = models / "prior_level_2" / "label_names.json"
    if not names.is_file(): return {}
    d = json.loads(names.read_text())
    return dict(artist_ids=d.get("artist"), genre_ids=d.get("genre"))


def context_bits(prior, ds, contexts: list[int], block: int = 128, stride: int = 256) -> dict:
    "Bits of the same held-out blocks of `block` codes given each context length in `contexts` (see (e) above)."
    import torch
    from torch.utils.data import default_collate
    from jukebox_nb.training import prior_inputs
    c, Ls = prior.cfg, sorted(contexts)
    if Ls[0] < 1 or Ls[-1] + block > c.n_ctx:
        raise SystemExit(f"--contexts must lie in [1, {c.n_ctx - block}] (a {block}-code block after L codes fits a {c.n_ctx}-code window)")
    rows = []
    for k in range(len(ds.paths)):
        n = int(ds.lengths[k])
        for t0 in range(Ls[-1], n - c.n_ctx + Ls[0] + 1, stride):  # every L's window [t0 - L, t0 - L + n_ctx) lies in the piece
            batch = default_collate([ds.window(k, t0 - L) for L in Ls])
            with torch.no_grad(): bits = prior(*prior_inputs(batch)).gen_bits
            rows.append([float(bits[j, L:L + block].mean()) for j, L in enumerate(Ls)])
    if len(rows) < 2: raise SystemExit(f"only {len(rows)} block(s) of the split fit every context length: use shorter --contexts or a smaller --stride")
    A = np.array(rows).T  # [len(Ls), blocks]
    mid = Ls.index(max([L for L in Ls if L <= 128], default=Ls[0])); d = A - A[mid]  # against 128 codes of context (the issue's mark)
    return dict(block=block, stride=stride, blocks=A.shape[1], reference_context=Ls[mid],
                mean_bits={str(L): round(float(A[i].mean()), 4) for i, L in enumerate(Ls)},
                minus_reference={str(L): round(float(d[i].mean()), 4) for i, L in enumerate(Ls)},
                standard_error={str(L): round(float(d[i].std(ddof=1) / np.sqrt(A.shape[1])), 4) for i, L in enumerate(Ls)},
                share_better_than_reference={str(L): round(float((d[i] < 0).mean()), 3) for i, L in enumerate(Ls)})


def label_bits(prior, ds, n_windows: int = 64, batch: int = 8) -> tuple[list, np.ndarray, np.ndarray]:
    """Bits per code of `n_windows` evenly spaced windows of `ds` under every (artist, genres) pair of its corpus (see (e)
    `--labels`): the pairs, each window's own pair (index) and the [windows, pairs] bits."""
    import dataclasses
    import torch
    c, tracks = prior.cfg, ds.index["tracks"]
    pair = lambda t: (t["artist"], tuple(t["genres"]))
    pairs = sorted({pair(t) for t in tracks.values() if "codes" in t})
    if len(pairs) < 2: raise SystemExit(f"--labels needs pieces of at least two (artist, genres) pairs; {ds.dir} has {len(pairs)}")
    items = [ds[int(i)] for i in np.linspace(0, len(ds) - 1, min(n_windows, len(ds))).round().astype(int)]
    own = np.array([pairs.index(pair(tracks[ds.paths[it["track"]]])) for it in items])
    bits = np.zeros((len(items), len(pairs)))
    for j, (artist, genres) in enumerate(pairs):
        ids = dict(artist=ds.artist_ids[artist], genres=tuple(ds.genre_ids[g] for g in genres)[: c.max_bow_genre_size])
        for b in range(0, len(items), batch):
            chunk = items[b:b + batch]
            metas = [dataclasses.replace(ds.metadata(ds.paths[it["track"]], it["start"]), **ids) for it in chunk]
            with torch.no_grad(): bits[b:b + len(chunk), j] = prior(torch.stack([it["z"] for it in chunk]), prior.tokenize(metas)).gen_loss.numpy()
    return pairs, own, bits


def label_summary(pairs: list, own: np.ndarray, bits: np.ndarray) -> dict:
    "Gain (other pairs minus own, bits per code), the prior's accuracy as a classifier, and both per own pair."
    rows = np.arange(len(own))
    others = (bits.sum(1) - bits[rows, own]) / (len(pairs) - 1)
    best = bits.argmin(1)
    name = lambda k: f"{pairs[k][0]} / {' '.join(pairs[k][1])}"
    return dict(pairs=[name(k) for k in range(len(pairs))], windows=len(own),
                own_bits=round(float(bits[rows, own].mean()), 4), other_bits=round(float(others.mean()), 4),
                gain=round(float((others - bits[rows, own]).mean()), 4), accuracy=round(float((best == own).mean()), 3),
                chance=round(1 / len(pairs), 3),
                by_pair={name(k): dict(windows=int((own == k).sum()), accuracy=round(float((best[own == k] == k).mean()), 3),
                                       gain=round(float((others - bits[rows, own])[own == k].mean()), 4))
                         for k in sorted(set(own.tolist()))})


def cmd_bits(args) -> dict:
    import torch
    from jukebox_nb.checkpoints import load_pretrained
    from jukebox_nb.training import evaluate_prior
    torch.set_num_threads(args.threads)
    models = Path(args.models)
    prior = load_pretrained(models / "prior_level_2" if (models / "prior_level_2").is_dir() else models, kind="prior")
    t0 = time.perf_counter()
    res = evaluate_prior(prior, args.codes, split=args.split, n_windows=args.windows, by_position=True,
                         valid_fraction=args.valid_fraction, seed=args.split_seed, **_label_ids(models))
    out = dict(command="bits", split=args.split, windows=args.windows, n_ctx=int(prior.cfg.n_ctx),
               bits_per_code=round(float(res["gen_loss"]), 4), **position_bands(res["bits_by_position"]))
    if args.contexts or args.labels:
        from jukebox_nb.training import CodesDataset
        prior.eval()
        ds = CodesDataset(args.codes, prior.cfg, args.split, args.valid_fraction, args.split_seed, **_label_ids(models))
        if args.contexts: out["context"] = context_bits(prior, ds, args.contexts, args.block, args.stride)
        if args.labels: out["labels"] = label_summary(*label_bits(prior, ds, args.windows))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def cmd_continuation(args) -> dict:
    import torch
    from jukebox_nb.checkpoints import load_demo_models
    from jukebox_nb.sampling import SampleRequest, sample
    torch.set_num_threads(args.threads)
    corpus = Path(args.corpus)
    models = load_demo_models(args.models)
    train, valid = _corpus_tracks(corpus, args.valid_fraction, args.split_seed)
    valid = (valid if args.split == "valid" else train + valid)[: args.pieces]
    sr, prompt_s, cont_s = models.sample_rate, args.prompt_seconds, args.seconds
    song_length = int(_song_seconds(models, args.models) * sr)  # the song the demo tells of, read once
    temps, hops = _temperature(args), _hop_fraction(args)
    conts, trues, prompts, t0 = [], [], [], time.perf_counter()
    for i, t in enumerate(valid):
        x = load_clip(corpus / t.path, prompt_s + cont_s, args.start)
        import librosa
        x_model = librosa.resample(x, orig_sr=SR, target_sr=sr)
        meta = models.request_metadata(t.artist, " ".join(t.genres), total_length=song_length,
                                       offset=int(args.start * sr))
        req = SampleRequest(level_metadata=meta, seconds=prompt_s + cont_s, levels=tuple(args.levels), prime_audio=x_model,
                            prime_seconds=prompt_s, seed=args.seed + i, temperature=temps, top_p=args.top_p,
                            hop_fraction=hops)
        res = sample(models, req)
        y = np.asarray(res.audio[min(args.levels)][0]).reshape(-1)
        y = librosa.resample(y.astype(np.float32), orig_sr=sr, target_sr=SR)
        n0 = int(prompt_s * SR)
        conts.append(mean_chroma(y[n0:])); trues.append(mean_chroma(x[n0:])); prompts.append(mean_chroma(x[:n0]))
    res, ref = agreement_vs_others(conts, trues), agreement_vs_others(prompts, trues)
    return dict(command="continuation", pieces=[t.path for t in valid], levels=list(args.levels), temperature=list(temps), top_p=args.top_p,
                hop_fraction=list(hops), **res,
                prompt_agreement=ref["agreement"], prompt_baseline=ref["baseline"], seconds=round(time.perf_counter() - t0, 1))


def cmd_upsample(args) -> dict:
    """What the upsamplers let through: each held-out piece's real codes at `--from-level` (default the top level: the
    VQ-VAE's encoding of `--seconds` from `--start`), upsampled by the models' priors as the demo does, measured on
    (a)-(c) beside the real clip, that level's own decoding (`top`) and after each upper upsampler alone (`level_L`,
    decoded at its level). Each lower level's real codes decoded (`decoded_level_L`) say what the VQ-VAE itself keeps
    there. Writes `sample_K.wav` (the upsampled audio), `top_K.wav` and labels.jsonl to `--out`, and the same for each
    `decoded_level_L/`, so `labels --samples OUT` says how well the labels survive: a ceiling for any top prior's
    samples through all levels."""
    import librosa, torch
    from jukebox_nb.audio import save_wav
    from jukebox_nb.checkpoints import load_demo_models
    from jukebox_nb.sampling import SampleRequest, sample
    torch.set_num_threads(args.threads)
    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = load_demo_models(args.models)
    train, valid = _corpus_tracks(corpus, args.valid_fraction, args.split_seed)
    pieces = (valid if args.split == "valid" else train + valid)[: args.pieces or None]
    top = max(models.priors) if args.from_level is None else args.from_level
    lower = tuple(sorted((l for l in models.priors if l < top), reverse=True))  # the upsamplers' levels, in sampling order
    if top not in models.priors or not lower:
        raise SystemExit(f"--from-level {top}: choose a level with an upsampler below it, one of {sorted(l for l in models.priors if l > min(models.priors))}")
    sr, hop = models.sample_rate, models.hop(max(models.priors))  # whole top-level codes: the same audio from any level
    song_length, temps, hops = int(_song_seconds(models, args.models) * sr), _temperature(args), _hop_fraction(args)
    middle = [f"level_{l}" for l in lower[:-1]]  # what the upper upsampler(s) alone give, decoded at their own level
    decoded = [f"decoded_level_{l}" for l in lower]  # the real codes of each level below, decoded: what the VQ-VAE keeps there
    rows, measured, t0 = [], {n: [] for n in ("real", "top", *middle, "upsampled", *decoded)}, time.perf_counter()
    for name in decoded: (out / name).mkdir(exist_ok=True)
    for k, t in enumerate(pieces):
        x = load_clip(corpus / t.path, args.seconds, args.start)
        xm = librosa.resample(x, orig_sr=SR, target_sr=sr) if sr != SR else x
        xm = torch.from_numpy(np.ascontiguousarray(xm[: len(xm) // hop * hop], dtype=np.float32))[None]
        z = models.vqvae.encode(xm, levels=top)
        with torch.inference_mode(): y_top = models.vqvae.decode(z, top).reshape(-1).float().numpy()
        meta = models.request_metadata(t.artist, " ".join(t.genres), total_length=song_length, offset=int(args.start * sr))
        res = sample(models, SampleRequest(level_metadata=meta, seconds=xm.shape[1] / sr, levels=lower, prime_tokens={top: z},
                                           seed=args.seed + k, temperature=temps, top_p=args.top_p, hop_fraction=hops))
        y_up = np.asarray(res.audio[min(lower)][0]).reshape(-1)
        save_wav(out / f"sample_{k}.wav", y_up, sr); save_wav(out / f"top_{k}.wav", y_top, sr)
        rows.append(dict(path=f"sample_{k}.wav", artist=t.artist, genre=" ".join(t.genres), piece=t.path, seed=args.seed + k))
        labels = "".join(json.dumps(r) + "\n" for r in rows)
        (out / "labels.jsonl").write_text(labels)
        ys = {"real": x, "top": y_top, **{f"level_{l}": np.asarray(res.audio[l][0]).reshape(-1) for l in lower[:-1]}, "upsampled": y_up}
        for l in lower:
            with torch.inference_mode(): ys[f"decoded_level_{l}"] = models.vqvae.decode(models.vqvae.encode(xm, levels=l), l).reshape(-1).float().numpy()
            save_wav(out / f"decoded_level_{l}" / f"sample_{k}.wav", ys[f"decoded_level_{l}"], sr)
            (out / f"decoded_level_{l}" / "labels.jsonl").write_text(labels)
        for name, y in ys.items():
            y = librosa.resample(y.astype(np.float32), orig_sr=sr, target_sr=SR) if name != "real" and sr != SR else y
            measured[name].append(_rounded(measure_clip(y)))
    ref = summarise(measured["real"])
    return dict(command="upsample", out=str(out), pieces=[t.path for t in pieces], from_level=top, seconds=args.seconds, start=args.start,
                temperature=list(temps), top_p=args.top_p, hop_fraction=list(hops),
                **{f"{n}_summary": summarise(ms) for n, ms in measured.items()},
                **{f"{n}_inside_real": f"{sum(inside(r, ref) for r in measured[n])}/{len(pieces)}" for n in ("top", *middle, "upsampled", *decoded)},
                measured=measured, seconds_taken=round(time.perf_counter() - t0, 1))


def _temperature(args) -> tuple:
    "Temperatures of levels 0, 1, 2: `--temperature` (one value or three), else the models' demo.json, as the demo samples."
    from jukebox_nb.cli import demo_temperature
    try: return tuple(demo_temperature(args.temperature, args.models))
    except ValueError as e: raise SystemExit(str(e))


def _hop_fraction(args) -> tuple:
    "Window hops of levels 0, 1, 2 as fractions of a window: `--hop-fraction`, else the library's default (the demo's)."
    from jukebox_nb.sampling import SampleRequest
    return tuple(args.hop_fraction or SampleRequest().hop_fraction)


def _song_seconds(models, folder) -> float:
    "The song length samples open, as the demo tells it: the models' demo.json `song_seconds`, inside the top prior's range."
    from jukebox_nb.checkpoints import demo_defaults
    from jukebox_nb.sampling import SONG_SECONDS, song_seconds_for
    return song_seconds_for(models.prior(2), demo_defaults(folder).get("song_seconds", SONG_SECONDS))


def label_pairs(tracks) -> list[tuple[str, str]]:
    "The distinct (artist, genre words) pairs of a corpus's pieces, in order of first appearance."
    return list(dict.fromkeys((t.artist, " ".join(t.genres)) for t in tracks))


def label_requests(models, args, levels) -> list[tuple[str, str, "SampleRequest"]]:
    """`args.n` requests of `args.seconds` at `levels`: the k-th asks for the k-th (artist, genre) pair of the corpus in
    turn, with seed `args.seed` + k, at `--temperature` / `--top-p` (default: the models' demo.json), as the demo asks."""
    from jukebox_nb.data import read_metadata
    from jukebox_nb.sampling import SampleRequest
    from jukebox_nb.studio import whole_token_seconds
    pairs = label_pairs(read_metadata(Path(args.corpus) / "metadata.jsonl"))
    sr = models.sample_rate
    song_length = int(_song_seconds(models, args.models) * sr)  # the song the demo tells of, read once
    seconds = whole_token_seconds(args.seconds, sr, models.hop(2))  # at least what was asked, as the demo does
    temps, hops, out = _temperature(args), _hop_fraction(args), []
    for k in range(args.n):
        artist, genre = pairs[k % len(pairs)]
        meta = models.request_metadata(artist, genre, total_length=song_length)
        out.append((artist, genre, SampleRequest(level_metadata=meta, seconds=seconds, levels=tuple(levels), seed=args.seed + k,
                                                 temperature=temps, top_p=args.top_p, hop_fraction=hops)))
    return out


def cmd_samples(args) -> dict:
    import torch
    from jukebox_nb.audio import save_wav
    from jukebox_nb.checkpoints import load_demo_models
    from jukebox_nb.sampling import sample
    torch.set_num_threads(args.threads)
    models = load_demo_models(args.models)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (artist, genre, req) in enumerate(label_requests(models, args, args.levels)):
        t0 = time.perf_counter()
        res = sample(models, req)
        name = f"sample_{k}.wav"
        save_wav(out / name, np.asarray(res.audio[min(args.levels)][0]).reshape(-1), models.sample_rate)
        rows.append(dict(path=name, artist=artist, genre=genre, seed=req.seed, seconds_taken=round(time.perf_counter() - t0, 1)))
        (out / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dict(command="samples", out=str(out), temperature=list(_temperature(args)), top_p=args.top_p,
                hop_fraction=list(_hop_fraction(args)), samples=rows)


NGRAMS = (8, 16, 32, 64, 128, 256)


def ngram_keys(codes: np.ndarray, # [T] codes of one clip or piece
               n: int) -> np.ndarray:
    "A 64-bit key for every run of `n` consecutive codes (a polynomial hash, wrapping: collisions about 1 in 2^64 a pair)."
    c = np.asarray(codes, dtype=np.uint64).reshape(-1)
    if len(c) < n: return np.zeros(0, dtype=np.uint64)
    keys = np.zeros(len(c) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n): keys = keys * np.uint64(1_000_003) + c[j:len(c) - n + 1 + j] + np.uint64(1)
    return keys


def copied_runs(clips: list[np.ndarray], # code sequences to check
                pieces: list[np.ndarray], # the training pieces' codes
                ngrams=NGRAMS) -> dict:
    "Per n: the share of each clip's n-code runs found in some piece (and its mean); per clip the longest n found."
    share, longest = {}, [0] * len(clips)
    for n in ngrams:
        seen = np.unique(np.concatenate([ngram_keys(p, n) for p in pieces] + [np.zeros(0, dtype=np.uint64)]))
        per = []
        for i, c in enumerate(clips):
            k = ngram_keys(c, n)
            hit = np.isin(k, seen) if len(k) else np.zeros(0, dtype=bool)
            per.append(round(float(hit.mean()), 4) if len(k) else None)
            if hit.any(): longest[i] = n
        ok = [x for x in per if x is not None]
        share[str(n)] = dict(mean=round(float(np.mean(ok)), 4) if ok else None, per_clip=per)
    return dict(share_found_in_training=share, longest_found=longest,
                longest_found_median=float(np.median(longest)) if longest else None)


def cmd_copying(args) -> dict:
    import torch
    from jukebox_nb.checkpoints import load_demo_models
    from jukebox_nb.data import split_tracks
    from jukebox_nb.sampling import SampleConfig, sample
    from jukebox_nb.studio import whole_token_seconds
    from jukebox_nb.training import _code_file, read_codes_index
    torch.set_num_threads(args.threads)
    models = load_demo_models(args.models)
    doc = read_codes_index(args.codes)
    if 2 not in doc["levels"]: raise SystemExit(f"{args.codes} holds levels {doc['levels']}: encode level 2 (jukebox-nb encode-codes --levels 2)")
    parts = split_tracks(doc["paths"], args.valid_fraction, args.split_seed)
    def codes(i: int):
        p = doc["paths"][i]
        return np.asarray(np.load(_code_file(Path(args.codes), p, 2))).reshape(-1) if "codes" in doc["tracks"].get(p, {}) else None
    train = [c for c in map(codes, parts["train"]) if c is not None]
    requests = label_requests(models, args, (2,))
    sr, hop = models.sample_rate, models.hop(2)
    seconds = whole_token_seconds(args.seconds, sr, hop)  # what each request asks for
    n_codes, start = int(round(seconds * sr / hop)), int(round(5.0 * sr / hop))
    held = [c[start:start + n_codes] for c in map(codes, parts["valid"]) if c is not None and len(c) >= start + n_codes]
    clips = [sample(models, req, SampleConfig(decode=False)).tokens[2][0].numpy() for _, _, req in requests]
    rows = [dict(artist=a, genre=g, seed=req.seed) for a, g, req in requests]
    return dict(command="copying", codes=str(args.codes), temperature=list(_temperature(args)),
                hop_fraction=list(_hop_fraction(args)), seconds=seconds, codes_per_clip=n_codes,
                training_pieces=len(train), training_codes=int(sum(len(c) for c in train)), requests=rows,
                samples=copied_runs(clips, train), held_out_pieces=copied_runs(held, train), held_out_count=len(held))


def _sampling_args(s: argparse.ArgumentParser):
    "--temperature, --top-p and --hop-fraction: as the demo samples unless told otherwise."
    s.add_argument("--temperature", type=float, nargs="+", default=None, help="one value (every level) or three (levels 0, 1, 2); "
                   "default: the models' demo.json \"temperature\", else 0.99")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    s.add_argument("--hop-fraction", type=float, nargs=3, default=None, metavar=("L0", "L1", "L2"),
                   help="how far each level's next window moves on, as a fraction of a window (default: the library's, as the demo)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("audio", help="(a) stable pitch, (b) key clarity, (c) pulse clarity of clips, beside reference clips")
    a.add_argument("samples", nargs="+", help="audio files or folders (demo output folders too)")
    a.add_argument("--reference", nargs="*", default=[], help="real clips to compare with")
    a.add_argument("--noise", action="store_true", help="also measure white noise of the same length")
    a.add_argument("--seconds", type=float, default=20.0); a.add_argument("--offset", type=float, default=0.0)
    a.add_argument("--reference-offset", type=float, default=None, help="start of the reference clips (default: --offset)")
    g = sub.add_parser("samples", help="sample clips asking for each label of a corpus in turn (for audio and labels)")
    g.add_argument("--models", required=True); g.add_argument("--corpus", required=True); g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=8); g.add_argument("--seconds", type=float, default=20.0)
    g.add_argument("--levels", type=int, nargs="+", default=[2, 1, 0]); g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=1)
    _sampling_args(g)
    u = sub.add_parser("upsample", help="what the upsamplers let through: held-out pieces' real top-level codes, upsampled as the demo "
                       "does, measured on (a)-(c); writes a folder `labels --samples` reads")
    u.add_argument("--models", required=True); u.add_argument("--corpus", required=True); u.add_argument("--out", required=True)
    u.add_argument("--pieces", type=int, default=0, help="0: every held-out piece"); u.add_argument("--start", type=float, default=20.0)
    u.add_argument("--seconds", type=float, default=10.0); u.add_argument("--seed", type=int, default=0)
    u.add_argument("--split", default="valid", choices=("valid", "all"), help="pieces to encode (all: a folder of held-out pieces only)")
    u.add_argument("--valid-fraction", type=float, default=0.1); u.add_argument("--split-seed", type=int, default=0)
    u.add_argument("--threads", type=int, default=1)
    u.add_argument("--from-level", type=int, default=None, help="the level whose real codes are upsampled (default: the top prior's)")
    _sampling_args(u)
    c = sub.add_parser("copying", help="(g) how much of the top prior's samples occurs verbatim in its training pieces' codes")
    c.add_argument("--models", required=True); c.add_argument("--corpus", required=True)
    c.add_argument("--codes", required=True, help="folder written by `jukebox-nb encode-codes` (level 2) for the same corpus")
    c.add_argument("--n", type=int, default=24); c.add_argument("--seconds", type=float, default=20.0); c.add_argument("--seed", type=int, default=100)
    c.add_argument("--valid-fraction", type=float, default=0.1); c.add_argument("--split-seed", type=int, default=0)
    c.add_argument("--threads", type=int, default=1)
    _sampling_args(c)
    for name, h in (("labels", "(d) label recognisability"), ("bits", "(e) bits per code by window position"),
                    ("continuation", "(f) chroma agreement of continuations")):
        s = sub.add_parser(name, help=h)
        s.add_argument("--valid-fraction", type=float, default=0.1); s.add_argument("--split-seed", type=int, default=0)
        s.add_argument("--threads", type=int, default=1)
        if name == "labels":
            s.add_argument("--corpus", required=True); s.add_argument("--samples", default=None)
            s.add_argument("--label", choices=("artist", "genre"), default="artist")
            s.add_argument("--clips-per-piece", type=int, default=4); s.add_argument("--clip-seconds", type=float, default=10.0)
            s.add_argument("--through", metavar="VQVAE", help="train and check the classifier on real clips encoded and decoded by this "
                           "VQ-VAE (a fair judge of samples decoded from one level)")
            s.add_argument("--through-level", type=int, default=2, help="with --through: the level (default: %(default)s)")
        elif name == "bits":
            s.add_argument("--models", required=True, help="a demo folder (uses prior_level_2/) or a prior folder")
            s.add_argument("--codes", required=True, help="folder written by `jukebox-nb encode-codes`")
            s.add_argument("--split", default="valid", choices=("valid", "train", "all")); s.add_argument("--windows", type=int, default=64)
            s.add_argument("--contexts", type=int, nargs="+", metavar="L", help="also score the same blocks given L codes of context, "
                           "for each L (e.g. 8 32 128 256 512 896)")
            s.add_argument("--block", type=int, default=128); s.add_argument("--stride", type=int, default=256)
            s.add_argument("--labels", action="store_true", help="also score the windows under every (artist, genres) pair of the "
                           "corpus: what the labels are worth to the prior")
        else:
            s.add_argument("--models", required=True); s.add_argument("--corpus", required=True)
            s.add_argument("--pieces", type=int, default=6); s.add_argument("--start", type=float, default=20.0)
            s.add_argument("--prompt-seconds", type=float, default=5.0); s.add_argument("--seconds", type=float, default=10.0)
            s.add_argument("--levels", type=int, nargs="+", default=[2]); s.add_argument("--seed", type=int, default=0)
            s.add_argument("--split", default="valid", choices=("valid", "all"), help="pieces to continue (all: a folder of held-out pieces only)")
            _sampling_args(s)
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    out = dict(cmd_audio=cmd_audio, cmd_labels=cmd_labels, cmd_bits=cmd_bits, cmd_continuation=cmd_continuation,
               cmd_samples=cmd_samples, cmd_upsample=cmd_upsample, cmd_copying=cmd_copying)[f"cmd_{args.command}"](args)
    out["load_average"] = list(os.getloadavg())
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1, default=float))
