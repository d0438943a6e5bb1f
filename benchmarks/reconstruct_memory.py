"""Peak memory and CPU time of `jukebox-nb reconstruct` on long files: streamed (the command) vs one pass.

    python benchmarks/reconstruct_memory.py                          # 60 s and 600 s streamed, 60 s one pass
    python benchmarks/reconstruct_memory.py --seconds 60 --one-pass 60 --repeats 3

The input is the bundled 5 s clip repeated to each length, written as a 44.1 kHz FLAC in a temporary folder;
the model is the bundled demo VQ-VAE. Each run is a fresh process (`jukebox-nb reconstruct ...` for the streamed
command; for `--one-pass`, this script's `_one_pass` mode: `load_audio`, `cli.reconstruct_clip`,
`save_wav` and a full-length spectrogram figure, which is what the command did before it streamed). Peak RSS and
CPU time (user + system) come from `os.wait4` on that process (one-pass and streamed runs alternate), so imports and model loading are included.
`cpu_s_per_audio_s` is CPU seconds per second of audio: on a shared 2-core machine it is steadier than wall time.
The load average is recorded before and after. Prints one JSON object.

Do not ask for a long `--one-pass`: it holds every activation of the whole file (about 40 MB per second of audio).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


CLI = "import sys; from jukebox_nb.cli import main; sys.exit(main(sys.argv[1:]))"  # `jukebox-nb`, from this interpreter


def _make_input(folder: Path, seconds: float) -> Path:
    "The bundled clip repeated to `seconds`, as FLAC."
    import numpy as np, soundfile as sf
    from jukebox_nb.audio import example_clip, load_audio
    clip = load_audio(example_clip())
    n = int(seconds * 44100)
    path = folder / f"clip_{seconds:g}s.flac"
    with sf.SoundFile(str(path), "w", 44100, 1, "PCM_16", format="FLAC") as f:
        for start in range(0, n, len(clip)): f.write(clip[:min(len(clip), n - start)])
    return path


def _run(cmd: list[str]) -> dict:
    "Run `cmd`; its wall time, CPU time and peak RSS."
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode: raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err}")
    return dict(wall_s=time.perf_counter() - t0, cpu_s=ru.ru_utime + ru.ru_stime, peak_rss_mb=ru.ru_maxrss / 1024)


def _one_pass(src: str, out: str) -> None:
    "What `reconstruct` did before it streamed: the whole file through each level at once."
    import matplotlib; matplotlib.use("Agg")
    from jukebox_nb.audio import load_audio, save_wav
    from jukebox_nb.cli import _vqvae, reconstruct_clip, spectrogram_figure
    from jukebox_nb.vqvae import keep_freed_memory
    keep_freed_memory()  # as the CLI does for inference commands
    vq = _vqvae(None); sr = vq.cfg.sample_rate
    rec = reconstruct_clip(vq, load_audio(src, sr=sr))
    save_wav(Path(out) / "original.wav", rec["original"], sr)
    for l, y in rec["audio"].items(): save_wav(Path(out) / f"level_{l}.wav", y, sr)
    spectrogram_figure([("original", rec["original"])] + [(f"level {l}", y) for l, y in rec["audio"].items()], sr).savefig(
        Path(out) / "spectrograms.png", dpi=90)


def _cmd(kind: str, src: Path, out: Path) -> list[str]:
    if kind == "streamed": return [sys.executable, "-c", CLI, "reconstruct", str(src), "--out", str(out)]
    return [sys.executable, __file__, "--_one-pass", str(src), str(out)]


def measure(kinds: list[str], src: Path, seconds: float, repeats: int, tmp: Path) -> list[dict]:
    "Median figures of `repeats` fresh-process runs of each implementation on one file, interleaved run by run."
    runs = {k: [] for k in kinds}
    for i in range(repeats):
        for k in kinds: runs[k].append(_run(_cmd(k, src, tmp / f"out_{k}_{seconds:g}_{i}")))
    out = []
    for k, rs in runs.items():
        med = {f: statistics.median(r[f] for r in rs) for f in rs[0]}
        out.append(dict(kind=k, audio_s=seconds, runs=repeats, **{f: round(v, 2) for f, v in med.items()},
                        cpu_s_per_audio_s=round(med["cpu_s"] / seconds, 4), wall_s_per_audio_s=round(med["wall_s"] / seconds, 4)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0], help="lengths to stream")
    ap.add_argument("--one-pass", type=float, nargs="*", default=[60.0], help="lengths to run in one pass (keep them short)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--_one-pass", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one_pass: return _one_pass(*args._one_pass)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for s in sorted(set(args.seconds) | set(args.one_pass)):
            src = _make_input(tmp, s)
            kinds = [k for k, lengths in (("one_pass", args.one_pass), ("streamed", args.seconds)) if s in lengths]
            for r in measure(kinds, src, s, args.repeats, tmp):
                results.append(r); print(json.dumps(r), file=sys.stderr, flush=True)
    print(json.dumps(dict(benchmark="reconstruct_memory", model="bundled demo VQ-VAE (mini)", cpu_count=os.cpu_count(),
                          load_avg_before=[round(x, 2) for x in load_before], load_avg_after=[round(x, 2) for x in os.getloadavg()],
                          results=results), indent=1))


if __name__ == "__main__":
    main()
