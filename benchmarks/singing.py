"""Singing: syllable-like events in audio, against the syllables of the lyrics it was asked to sing (issue 16).

    python benchmarks/singing.py count CLIPS...
    python benchmarks/singing.py validate CORPUS... [--skip N] [--limit N] [--instrumental N] [--noise-seconds 30]
    python benchmarks/singing.py samples SAMPLES...

Each command prints one JSON object. CLIPS are WAV/FLAC/OGG files (any rate, mixed to mono).

Syllable-like events (`syllable_events`; de Jong & Wempe's syllable-nucleus idea, simplified). A sung syllable is
one vowel: a swell of energy in the voice band between two dips (consonants, breaths, the gap to the next note).
1. The clip is resampled to 16 kHz; a 512-point STFT (32 ms Hann window, hop 10 ms) gives the power in the
   voice band 250-3500 Hz (vowel formants F1-F2; below it the accompaniment's bass, above it fricatives) per frame.
2. That power is smoothed by a 150 ms Hann window (15 frames) and taken in dB: the smoothing merges the
   stop bursts, nasal codas and diphone joins inside one syllable into the vowel's swell.
3. An event is a local maximum of that envelope that stands at least 6 dB above the dips on both sides of it
   (`scipy.signal.find_peaks` prominence), is no more than 30 dB below the clip's 95th-percentile level (silence
   and reverb tails are not syllables), and is at least 0.1 s after the previous event (the higher one wins).
The knobs (band, smoothing, prominence, gap) were picked by a grid search on a *calibration* set -- the first 40
sung songs of the demo corpus (with accompaniment) and 6 a cappella songs -- for the largest share of songs within
+-20% of their true syllable count; `validate` reports the error on other songs (see benchmarks/RESULTS.md).
With 6 dB prominence over 150 ms smoothing the minimum gap almost never binds (the grid found the same counts with
gaps of 0.1-0.25 s). Instruments make such swells too: on rendered instrumental scores the counter counts note
onsets, so read a sample's count beside its `stable_pitch` (musicality.py) and the instrumental rate `validate`
reports; the counter says how many syllable-like events there are, not that a voice made them.

Syllables of a text (`text_syllables`; checked against the corpus's `syllables` by `validate`): per word, the
groups of consecutive vowels (a e i o u y, with umlauts and accents), a group of several vowels counting one
syllable per vowel except where two vowels form a diphthong or long vowel (ai au ay ei eu ey ie oi ou oy aa ee
oo): "Leben" 2, "auch" 1, "freuet" 2 (eu-e), "Israel" 3 (a-e), "Filium" 3; every word has at least one syllable.
It is a rule for the German/Latin/Italian/Czech/Finnish chorale texts of the corpus: English silent e ("white")
and Latin "ei"/"eu"/"ie" in hiatus ("Dei", "Deum", "Kyrie") are counted wrong.

`validate CORPUS...`: every sung song of each corpus folder (metadata rows with `syllables`): events against the
true syllable count (relative error = events / syllables - 1) and the text rule against it; the same counter on
up to `--instrumental` tracks without lyrics, evenly spaced in metadata order (events per second, beside the true syllables per second of the sung
songs), on white and pink noise of `--noise-seconds`, and on silence.

`samples SAMPLES...`: each item is a folder with `labels.jsonl` ({"path", "lyrics"[, "song_seconds"]} per line:
an audio file, the words it was asked to sing and, optionally, the length of the song the sample is the start of)
or a folder written by `jukebox-nb demo --lyrics` (its `sample_level_0.wav`, the request and the song length the
top prior was told in `demo_state.json`).
Expected syllables = `text_syllables` of the words the sample should reach: all of them, or, when the song is
longer than the clip, the words starting within the first clip/song share of the characters (the linear rule by
which the prior's lyric window walks through the text). `within_20pct` is the share of samples whose events lie
within +-20% of that.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np

SR = 16000  # analysis rate
HOP = 160  # 10 ms frames
N_FFT = 512  # 32 ms window
BAND = (250.0, 3500.0)  # Hz: the voice band (vowel formants)
SMOOTH = 15  # frames: a 150 ms Hann window
PROMINENCE_DB = 6.0  # a peak stands this far above the dips either side
FLOOR_DB = 30.0  # peaks further below the clip's 95th-percentile level are ignored
MIN_GAP_S = 0.1  # seconds between events
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")
VOWELS = "aeiouyäöüàáâèéêìíîòóôùúûåæø"
DIPHTHONGS = {"ai", "au", "ay", "ei", "eu", "ey", "ie", "oi", "ou", "oy", "aa", "ee", "oo"}


def voice_envelope(y: np.ndarray, # mono audio
                   sr: int, # its sample rate
                  ) -> np.ndarray:
    "Smoothed voice-band power in dB, one value per 10 ms frame (steps 1-2 of the method)."
    import librosa
    y = np.asarray(y, np.float32).reshape(-1)
    if sr != SR: y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    if len(y) < N_FFT: return np.full(1, -100.0)
    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)) ** 2  # [bins, frames]
    f = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
    e = S[(f >= BAND[0]) & (f <= BAND[1])].sum(0)
    w = np.hanning(SMOOTH + 2)[1:-1]  # no zero end points
    return 10 * np.log10(np.convolve(e, w / w.sum(), "same") + 1e-10)


def syllable_events(y: np.ndarray, # mono audio
                    sr: int, # its sample rate
                   ) -> np.ndarray:
    "Times (s) of the syllable-like events of a clip (the method of the module docstring)."
    from scipy.signal import find_peaks
    d = voice_envelope(y, sr)
    if not np.any(np.asarray(y) != 0) or len(d) < 3: return np.zeros(0)
    peaks, _ = find_peaks(d, height=np.percentile(d, 95) - FLOOR_DB, prominence=PROMINENCE_DB,
                          distance=max(1, round(MIN_GAP_S * SR / HOP)))
    return peaks * HOP / SR


def word_syllables(word: str) -> int:
    "Syllables of one word by the vowel-group rule (at least 1)."
    w, n, prev = word.lower(), 0, None
    for c in w:
        if c not in VOWELS: prev = None; continue
        if prev is None or prev + c not in DIPHTHONGS: n += 1; prev = c  # a new vowel nucleus
        else: prev = None  # the second letter of a diphthong closes it: "eue" is eu + e
    return max(1, n)


def text_syllables(text: str) -> int:
    "Syllables of a text: the sum of `word_syllables` over its words (letters and apostrophes)."
    return sum(word_syllables(w) for w in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text))


def read_audio(path) -> tuple[np.ndarray, int]:
    "Mono float audio and its rate."
    import soundfile as sf
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.mean(1), sr


def count_clip(y: np.ndarray, sr: int) -> dict:
    "Events, seconds and events per second of one clip."
    t, sec = syllable_events(y, sr), len(y) / sr
    return dict(events=int(len(t)), seconds=round(sec, 3), per_second=round(len(t) / sec, 3) if sec else 0.0)


def error_summary(errors) -> dict:
    "Distribution of relative errors: quantiles, mean |error| and the share within +-20% (and +-10%)."
    e = np.asarray(errors, float)
    if not len(e): return dict(n=0)
    q = np.percentile(e, [0, 10, 25, 50, 75, 90, 100])
    return dict(n=len(e), min=q[0], p10=q[1], p25=q[2], median=q[3], p75=q[4], p90=q[5], max=q[6],
                mean_abs=float(np.abs(e).mean()), within_20pct=float((np.abs(e) <= 0.2).mean()),
                within_10pct=float((np.abs(e) <= 0.1).mean()))


def pink_noise(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    "Pink (1/f power) noise at -20 dBFS RMS."
    rng = np.random.default_rng(seed)
    X = np.fft.rfft(rng.standard_normal(int(seconds * sr)))
    X /= np.sqrt(np.maximum(np.fft.rfftfreq(int(seconds * sr), 1 / sr), 1.0))
    y = np.fft.irfft(X, int(seconds * sr))
    return (0.1 * y / y.std()).astype(np.float32)


def _rows(corpus: Path) -> list[dict]:
    return [json.loads(l) for l in (corpus / "metadata.jsonl").read_text().splitlines() if l.strip()]


def cmd_validate(args) -> dict:
    songs, instr = [], []
    for c in map(Path, args.corpus):
        if not (c / "metadata.jsonl").is_file(): raise SystemExit(f"singing: {c} has no metadata.jsonl (a corpus folder from `jukebox-nb data`)")
        rows = _rows(c)
        sung = [r for r in rows if r.get("syllables")][args.skip:][: args.limit]
        for r in sung:
            y, sr = read_audio(c / r["path"])
            n, k = len(r["syllables"]), count_clip(y, sr)
            songs.append(dict(path=str(c / r["path"]), artist=r["artist"], a_cappella="a cappella" in r.get("source", ""),
                              syllables=n, syllables_per_second=round(n / k["seconds"], 3), events=k["events"],
                              error=round(k["events"] / n - 1, 4), text_syllables=text_syllables(r["lyrics"]),
                              text_error=round(text_syllables(r["lyrics"]) / n - 1, 4)))
        plain = [r for r in rows if not r.get("lyrics")]
        for i in sorted(set(np.linspace(0, len(plain) - 1, min(args.instrumental, len(plain))).round().astype(int).tolist())):  # spread over the collections
            r = plain[i]
            y, sr = read_audio(c / r["path"])
            instr.append(dict(path=str(c / r["path"]), **count_clip(y, sr)))
    if not songs: raise SystemExit("singing: no sung song (metadata rows with `syllables`) in " + " ".join(args.corpus))
    noise = {"white": count_clip((0.1 * np.random.default_rng(0).standard_normal(int(args.noise_seconds * SR))).astype(np.float32), SR),
             "pink": count_clip(pink_noise(args.noise_seconds), SR), "silence": count_clip(np.zeros(int(args.noise_seconds * SR), np.float32), SR)}
    groups = {"all": songs, "a_cappella": [s for s in songs if s["a_cappella"]], "accompanied": [s for s in songs if not s["a_cappella"]]}
    rate = lambda rows, k: float(np.median([r[k] for r in rows])) if rows else None
    return dict(command="validate", corpora=args.corpus, method=dict(band_hz=BAND, smooth_frames=SMOOTH, hop_s=HOP / SR,
                prominence_db=PROMINENCE_DB, floor_db=FLOOR_DB, min_gap_s=MIN_GAP_S),
                events_vs_syllables={k: error_summary([s["error"] for s in v]) for k, v in groups.items()},
                text_rule_vs_syllables=error_summary([s["text_error"] for s in songs]),
                sung_syllables_per_second=rate(songs, "syllables_per_second"), sung_events_per_second=float(np.median(
                    [s["events"] / (s["syllables"] / s["syllables_per_second"]) for s in songs])),
                instrumental=dict(n=len(instr), events_per_second=dict(
                    median=rate(instr, "per_second"), min=min((r["per_second"] for r in instr), default=None),
                    max=max((r["per_second"] for r in instr), default=None))),
                noise=noise, worst=sorted(songs, key=lambda s: -abs(s["error"]))[:5], songs=songs if args.all_songs else None)


def expected_syllables(lyrics: str, clip_seconds: float, song_seconds: float | None = None) -> int:
    "Syllables of the words a clip should reach: all, or those starting in the first clip/song share of the characters."
    if not song_seconds or song_seconds <= clip_seconds: return text_syllables(lyrics)
    cut = len(lyrics) * clip_seconds / song_seconds
    words = [m for m in re.finditer(r"\S+", lyrics) if m.start() < cut]
    return text_syllables(" ".join(m.group() for m in words))


def sample_items(folder: Path) -> list[tuple[Path, str, float | None]]:
    "(audio, lyrics, song seconds or None) of each sample in a samples folder or demo folder(s)."
    if (folder / "labels.jsonl").is_file():
        rows = [json.loads(l) for l in (folder / "labels.jsonl").read_text().splitlines() if l.strip()]
        if bad := [r.get("path") for r in rows if not r.get("lyrics")]:
            raise SystemExit(f"singing: {folder}/labels.jsonl rows without \"lyrics\" ({bad[:3]}): give each sample the words it was asked to sing")
        return [(folder / r["path"], r["lyrics"], r.get("song_seconds")) for r in rows]
    demos = [d for d in sorted([folder, *folder.iterdir()]) if d.is_dir() and (d / "demo_state.json").is_file()]
    if not demos: raise SystemExit(f"singing: {folder} has no labels.jsonl ({{\"path\", \"lyrics\"}} per line) and no demo folders")
    out = []
    for d in demos:
        state = json.loads((d / "demo_state.json").read_text())
        r = state["request"]
        if not r.get("lyrics"): raise SystemExit(f"singing: the demo in {d} was asked for no lyrics (run it with --lyrics)")
        out.append((d / "sample_level_0.wav", r["lyrics"], state.get("song_seconds") or r.get("song_seconds")))  # the length the prior was told
    return out


def cmd_samples(args) -> dict:
    rows = []
    for item in map(Path, args.samples):
        if not item.is_dir(): raise SystemExit(f"singing: {item} is not a folder (labels.jsonl + audio, or a demo folder)")
        for path, lyrics, song_s in sample_items(item):
            y, sr = read_audio(path)
            k = count_clip(y, sr)
            want = expected_syllables(lyrics, k["seconds"], song_s)
            rows.append(dict(path=str(path), **k, lyric_syllables=want, ratio=round(k["events"] / want, 4) if want else None))
    ok = [r for r in rows if r["ratio"] is not None]
    return dict(command="samples", samples=rows, error=error_summary([r["ratio"] - 1 for r in ok]),
                within_20pct=float(np.mean([abs(r["ratio"] - 1) <= 0.2 for r in ok])) if ok else None)


def cmd_count(args) -> dict:
    return dict(command="count", clips=[dict(path=p, **count_clip(*read_audio(p))) for p in args.clips])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("count", help="syllable-like events of audio files"); c.add_argument("clips", nargs="+")
    v = sub.add_parser("validate", help="the counter against the true syllables of sung corpus songs, on instruments and noise")
    v.add_argument("corpus", nargs="+"); v.add_argument("--limit", type=int, help="at most N sung songs per corpus")
    v.add_argument("--skip", type=int, default=0, help="leave out the first N sung songs of each corpus (e.g. the calibration set)")
    v.add_argument("--instrumental", type=int, default=10, help="tracks without lyrics measured per corpus (default 10)")
    v.add_argument("--noise-seconds", type=float, default=30.0); v.add_argument("--all-songs", action="store_true", help="list every song")
    s = sub.add_parser("samples", help="events of sung samples against the syllables of the lyrics they were asked for")
    s.add_argument("samples", nargs="+")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    out = {"count": cmd_count, "validate": cmd_validate, "samples": cmd_samples}[args.command](args)
    json.dump(out, sys.stdout, indent=1, default=float); print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
