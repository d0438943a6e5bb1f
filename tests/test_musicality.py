"""The musicality measures of benchmarks/musicality.py (issue 15) on synthetic signals whose answer is known:
a held C-major chord has a stable pitch and a clear key, noise has neither, a click track at 120 bpm pulses every 0.5 s."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("musicality", ROOT / "benchmarks" / "musicality.py")
m = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m)
SR = m.SR


def tone(freqs, seconds=4.0, sr=SR, harmonics=4):
    "Sum of harmonic tones (1/k amplitudes) at `freqs`, with 10 ms fades."
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f * k * t) / k for f in freqs for k in range(1, harmonics + 1))
    fade = np.minimum(1, np.minimum(t, t[::-1]) / 0.01)
    return (0.2 * y * fade / np.abs(y).max()).astype(np.float32)


def midi_hz(n): return 440.0 * 2 ** ((n - 69) / 12)


C_MAJOR = [midi_hz(n) for n in (48, 60, 64, 67)]  # C3 C4 E4 G4


@pytest.fixture(scope="module")
def noise(): return m.noise_clip(4.0)


@pytest.fixture(scope="module")
def clicks():
    "A click (a 5 ms decaying burst) every 0.5 s for 8 s: 120 bpm."
    y = np.zeros(8 * SR, np.float32)
    burst = np.random.default_rng(1).standard_normal(int(0.005 * SR)) * np.exp(-np.arange(int(0.005 * SR)) / 20)
    for s in range(0, len(y) - len(burst), SR // 2): y[s:s + len(burst)] += burst
    return 0.5 * y


def test_stable_pitch_chord_vs_noise(noise):
    chord = m.stable_pitch(tone(C_MAJOR))
    assert chord["stable_pitch"] > 0.9
    assert m.stable_pitch(noise)["stable_pitch"] < 0.15
    assert m.stable_pitch(np.zeros(SR, np.float32))["stable_pitch"] == 0.0  # silence: no pitch


def test_stable_pitch_needs_a_held_note():
    "A new random pitch every 60 ms (shorter than a track's 139 ms) counts far less than one held for the same time."
    rng = np.random.default_rng(0)
    glitter = np.concatenate([tone([midi_hz(rng.integers(48, 84))], 0.06) for _ in range(60)])
    held = tone([midi_hz(60)], len(glitter) / SR)
    assert m.stable_pitch(glitter)["stable_pitch"] < 0.5 < m.stable_pitch(held)["stable_pitch"]


def test_key_clarity_chord_vs_noise(noise):
    chord = m.key_clarity(tone(C_MAJOR))
    assert chord["key"] == "C major" and chord["key_clarity"] > 0.7
    assert m.key_clarity(noise)["key_clarity"] < chord["key_clarity"] - 0.2


def test_key_of_chroma_profiles():
    prof, names = m.key_profiles()
    assert prof.shape == (24, 12) and names[0] == "C major" and names[12 + 9] == "A minor"
    r = m.key_of_chroma(np.roll(m.KK_MINOR, 9))  # the A minor profile itself
    assert r["key"] == "A minor" and r["key_clarity"] == pytest.approx(1.0)
    assert m.key_of_chroma(np.ones(12)) == dict(key_clarity=0.0, key="none")


def test_pulse_clarity_click_track(clicks, noise):
    r = m.pulse_clarity(clicks)
    assert r["pulse_clarity"] > 0.8 and r["pulse_s"] == pytest.approx(0.5, abs=0.03)
    assert m.pulse_clarity(noise)["pulse_clarity"] < 0.3
    assert m.pulse_of_envelope(np.ones(100), 43.0) == dict(pulse_clarity=0.0, pulse_s=0.0)  # constant: no pulse


def test_position_bands():
    bits = np.r_[9.0, 8.0, 7.0, 7.0, np.full(4, 6.0), np.linspace(6, 5, 1016)]
    r = m.position_bands(bits)
    assert list(r["bands"])[:4] == ["0", "1", "2-3", "4-7"] and list(r["bands"])[-1] == "512-1023"
    assert r["bands"]["0"] == 9 and r["bands"]["2-3"] == 7 and r["falling_past_128"] > 0
    assert m.position_bands(np.full(1024, 6.5))["falling_past_128"] == pytest.approx(0.0)  # flat: no gain from context


def test_agreement_vs_others():
    true = [np.eye(12)[0], np.eye(12)[5], np.eye(12)[7]]
    good = m.agreement_vs_others(true, true)
    assert good["agreement"] == 1.0 and good["baseline"] == 0.0
    bad = m.agreement_vs_others(true[1:] + true[:1], true)  # each continuation matches another piece
    assert bad["agreement"] == 0.0 and bad["baseline"] == 0.5
    with pytest.raises(ValueError, match=">= 2"): m.agreement_vs_others(true[:1], true[:1])


def test_label_classifier_tells_pitch_classes_apart():
    "Features of two 'artists' (low and high chords, with noise) are told apart on clips it was not fit on."
    rng = np.random.default_rng(0)
    def clip(base): return tone([midi_hz(base + rng.integers(0, 3))], 1.0) + 0.05 * rng.standard_normal(SR).astype(np.float32)
    X = np.array([m.clip_features(clip(b)) for b in (48, 72) for _ in range(6)])
    y = ["low"] * 6 + ["high"] * 6
    assert X.shape == (12, 152)
    clf = m.fit_label_classifier(X[::2], y[::2])
    assert m.accuracy(clf, X[1::2], y[1::2]) == 1.0
    with pytest.raises(ValueError, match="at least 2 labels"): m.fit_label_classifier(X[:3], ["low"] * 3)


def test_audio_command(tmp_path, capsys):
    "The CLI measures files against reference files and says which samples lie inside the reference range."
    sf.write(tmp_path / "chord.wav", tone(C_MAJOR, 3.0), SR)
    sf.write(tmp_path / "noise.wav", m.noise_clip(3.0), SR)
    (tmp_path / "ref").mkdir()
    sf.write(tmp_path / "ref" / "a.wav", tone(C_MAJOR, 3.0), SR)
    sf.write(tmp_path / "ref" / "b.wav", tone([midi_hz(n) for n in (43, 59, 62, 67)], 3.0), SR)  # G major
    out = m.main(["audio", str(tmp_path / "chord.wav"), str(tmp_path / "noise.wav"), "--reference", str(tmp_path / "ref"), "--seconds", "3"])
    json.dumps(out)  # JSON-ready
    assert [Path(r["file"]).name for r in out["samples"]] == ["chord.wav", "noise.wav"]
    assert out["samples_inside_reference"] == "1/2"
    with pytest.raises(SystemExit, match="does not exist"): m.main(["audio", str(tmp_path / "missing.wav")])


def test_labels_command(tmp_path):
    "(d): a classifier fit on the corpus's training pieces scores held-out pieces and samples asked for a label."
    from jukebox_nb.data import Track, write_metadata
    rng, tracks = np.random.default_rng(0), []
    for i in range(8):
        label, base = ("low", 43) if i % 2 else ("high", 74)
        sf.write(tmp_path / f"t{i}.wav", tone([midi_hz(base + rng.integers(0, 3))], 2.0), SR)
        tracks.append(Track(f"t{i}.wav", artist=label, genres=("toy", label), title=f"t{i}", licence="CC0-1.0", source="test"))
    write_metadata(tmp_path / "metadata.jsonl", tracks)
    (tmp_path / "s").mkdir()
    sf.write(tmp_path / "s" / "a.wav", tone([midi_hz(44)], 2.0), SR)
    (tmp_path / "s" / "labels.jsonl").write_text('{"path": "a.wav", "artist": "low", "genre": ["toy", "low"]}\n'
                                                 '{"path": "a.wav", "artist": "high", "genre": ["toy", "high"]}\n')
    args = ["labels", "--corpus", str(tmp_path), "--samples", str(tmp_path / "s"), "--clip-seconds", "1", "--clips-per-piece", "2",
            "--valid-fraction", "0.25"]
    out = m.main(args)
    assert out["classes"] == ["high", "low"] and out["chance"] == 0.5 and out["held_out_clips"] == 4
    assert out["held_out_accuracy"] == 1.0
    assert [s["predicted"] for s in out["samples"]] == ["low", "low"] and out["sample_accuracy"] == 0.5
    assert m.main(args + ["--label", "genre"])["classes"] == ["toy high", "toy low"]
    (tmp_path / "s" / "labels.jsonl").write_text('{"path": "a.wav", "artist": "nobody"}\n')
    with pytest.raises(SystemExit, match="nobody"): m.main(args)


def test_labels_through_a_vqvae_level(tmp_path, monkeypatch):
    "--through: every real clip the classifier sees is first encoded and decoded by the VQ-VAE at that level."
    import torch
    from jukebox_nb.checkpoints import save_pretrained
    from jukebox_nb.vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0); save_pretrained(VQVAE(VQVAEConfig.preset("tiny", sample_rate=SR)).eval(), tmp_path / "vq")
    y = tone([midi_hz(57)], 1.0)
    f = m.through_vqvae(tmp_path / "vq", 1)
    z = f(y)
    assert abs(len(z) - len(y)) < 128 and not np.allclose(z[:1000], y[:1000])  # whole top-level hops, changed by the model
    seen = []
    real = m.clip_features
    monkeypatch.setattr(m, "clip_features", lambda c, sr=SR: (seen.append(len(c)), real(c, sr))[1])
    monkeypatch.setattr(m, "through_vqvae", lambda folder, level: (lambda c: c[: len(c) // 2]))  # a stand-in that halves each clip
    from jukebox_nb.data import Track, write_metadata
    for i in range(4): sf.write(tmp_path / f"t{i}.wav", tone([midi_hz(43 + 30 * (i % 2))], 2.0), SR)
    write_metadata(tmp_path / "metadata.jsonl", [Track(f"t{i}.wav", artist=("low", "high")[i % 2], genres=("toy",), title=str(i),
                                                      licence="CC0-1.0", source="test") for i in range(4)])
    out = m.main(["labels", "--corpus", str(tmp_path), "--clip-seconds", "1", "--clips-per-piece", "2", "--valid-fraction", "0.25",
                  "--through", str(tmp_path / "vq"), "--through-level", "1"])
    assert out["through"].endswith("vq level 1") and seen and all(n == SR // 2 for n in seen)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    "Random tiny models saved as a demo folder, a 3-piece corpus of chords at 44.1 kHz and its cached codes."
    from jukebox_nb.checkpoints import Jukebox, save_pretrained
    from jukebox_nb.data import Track, write_metadata
    from jukebox_nb.training import encode_corpus, write_label_tables
    d = tmp_path_factory.mktemp("tiny")
    tracks = []
    for i, root in enumerate((48, 53, 55)):
        sf.write(_mkdir(d / "corpus") / f"p{i}.wav", tone([midi_hz(n) for n in (root, root + 4, root + 7)], 3.0, sr=44100), 44100)
        tracks.append(Track(f"p{i}.wav", "a", ("g",), f"p{i}", "CC0-1.0", "test"))
    write_metadata(d / "corpus" / "metadata.jsonl", tracks)
    tm = Jukebox.tiny()
    save_pretrained(tm.vqvae, d / "models" / "vqvae")
    for l in (2, 1, 0): save_pretrained(tm.priors[l], d / "models" / f"prior_level_{l}")
    write_label_tables(d / "models" / "prior_level_2", {"a": 1}, {"g": 1})
    return d, encode_corpus(tm.vqvae, d / "corpus", cache_dir=d / "codes")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True); return p


def test_bits_command(tiny_setup):
    "(e) on cached codes: mean bits and bits by band of window positions of the top prior."
    d, codes = tiny_setup
    out = m.main(["bits", "--models", str(d / "models"), "--codes", str(codes), "--split", "all", "--windows", "4"])
    n = out["n_ctx"]
    assert 0 < out["bits_per_code"] < 20 and list(out["bands"])[0] == "0" and list(out["bands"])[-1].endswith(f"-{n - 1}")


def test_bits_context_scores_the_same_blocks_at_every_context_length(tiny_setup):
    "(e) unconfounded: each context length scores the same blocks, against the largest length up to 128 (here 16)."
    d, codes = tiny_setup
    out = m.main(["bits", "--models", str(d / "models"), "--codes", str(codes), "--split", "all", "--windows", "4",
                  "--contexts", "16", "2", "8", "--block", "8", "--stride", "64"])
    c = out["context"]
    assert c["reference_context"] == 16 and list(c["mean_bits"]) == ["2", "8", "16"] and c["blocks"] >= 2
    assert c["minus_reference"]["16"] == 0 and all(0 < b < 20 for b in c["mean_bits"].values())
    for L in ("2", "8"):
        assert c["minus_reference"][L] == pytest.approx(c["mean_bits"][L] - c["mean_bits"]["16"], abs=2e-4) and c["standard_error"][L] >= 0
    with pytest.raises(SystemExit, match="--contexts must lie in"):  # a block after 30 codes does not fit a 32-code window
        m.main(["bits", "--models", str(d / "models"), "--codes", str(codes), "--split", "all", "--contexts", "30", "--block", "8"])


def test_continuation_command(tiny_setup):
    "(f) with tiny random models: each piece's continuation is compared with its own next stretch and the others'."
    d, _ = tiny_setup
    out = m.main(["continuation", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--split", "all", "--pieces", "3",
                  "--start", "0", "--prompt-seconds", "0.5", "--seconds", "1"])
    assert len(out["pieces"]) == 3 and len(out["per_piece"]) == 3
    assert 0 <= out["baseline"] <= 1 and 0 <= out["agreement"] <= 1
    assert out["prompt_agreement"] > out["prompt_baseline"]  # each chord's first 0.5 s matches its own next second best


def test_upsample_command_upsamples_real_top_codes(tiny_setup, tmp_path):
    "`upsample`: each piece's real top-level codes, sampled down to level 0, measured beside the clip; `labels` reads the folder."
    d, _ = tiny_setup
    out = m.main(["upsample", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--out", str(tmp_path / "u"),
                  "--split", "all", "--pieces", "2", "--start", "0", "--seconds", "1"])
    json.dumps(out)
    assert len(out["pieces"]) == 2
    assert all(out[f"{n}_inside_real"].endswith("/2") for n in ("top", "level_1", "upsampled"))
    assert {n: len(r) for n, r in out["measured"].items()} == {"real": 2, "top": 2, "level_1": 2, "upsampled": 2,
                                                               "decoded_level_1": 2, "decoded_level_0": 2}
    assert out["from_level"] == 2 and out["decoded_level_0_inside_real"].endswith("/2")
    for k in range(2):
        for name in (f"sample_{k}.wav", f"top_{k}.wav"):
            info = sf.info(tmp_path / "u" / name)
            assert info.samplerate == 44100 and abs(info.frames - 44100) <= 128  # whole top-level hops of the 1 s clip
    assert not np.allclose(sf.read(tmp_path / "u" / "sample_0.wav")[0], sf.read(tmp_path / "u" / "top_0.wav")[0])  # sampled, not the decode
    assert [(p.name, lab) for p, lab in m._asked_labels(tmp_path / "u", "artist")] == [("sample_0.wav", "a"), ("sample_1.wav", "a")]
    # each lower level's real codes decoded, in a folder `labels` reads: the VQ-VAE's own ceiling there
    assert [(p.name, lab) for p, lab in m._asked_labels(tmp_path / "u" / "decoded_level_0", "artist")] == [("sample_0.wav", "a"), ("sample_1.wav", "a")]
    assert not np.allclose(sf.read(tmp_path / "u" / "decoded_level_0" / "sample_0.wav")[0], sf.read(tmp_path / "u" / "top_0.wav")[0])


def test_upsample_from_a_lower_level(tiny_setup, tmp_path):
    "`upsample --from-level 1`: the real level-1 codes through the bottom upsampler only; a level with no upsampler below is refused."
    d, _ = tiny_setup
    args = ["upsample", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--split", "all", "--pieces", "1", "--start", "0",
            "--seconds", "1"]
    out = m.main([*args, "--out", str(tmp_path / "u"), "--from-level", "1"])
    assert out["from_level"] == 1 and set(out["measured"]) == {"real", "top", "upsampled", "decoded_level_0"}
    full = m.main([*args, "--out", str(tmp_path / "v")])  # the same audio whatever the level: its real codes decode alike
    assert out["measured"]["decoded_level_0"] == full["measured"]["decoded_level_0"] and out["measured"]["top"] == full["measured"]["decoded_level_1"]
    with pytest.raises(SystemExit, match="--from-level 0: choose a level with an upsampler below it, one of \\[1, 2\\]"):
        m.main([*args, "--out", str(tmp_path / "w"), "--from-level", "0"])


def test_samples_command_asks_for_each_label_in_turn(tiny_setup, tmp_path):
    "`samples` writes one WAV per sample and labels.jsonl that `labels --samples` reads."
    d, _ = tiny_setup
    out = m.main(["samples", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--out", str(tmp_path / "s"),
                  "--n", "2", "--seconds", "0.2", "--seed", "5"])
    assert [(r["artist"], r["genre"], r["seed"]) for r in out["samples"]] == [("a", "g", 5), ("a", "g", 6)]
    assert [(p.name, lab) for p, lab in m._asked_labels(tmp_path / "s", "artist")] == [("sample_0.wav", "a"), ("sample_1.wav", "a")]
    info = sf.info(tmp_path / "s" / "sample_0.wav")
    assert info.samplerate == 44100 and info.frames >= 0.2 * 44100
    assert m.label_pairs([type("T", (), dict(artist=a, genres=g))() for a, g in [("x", ("p", "q")), ("y", ("r",)), ("x", ("p", "q"))]]) \
        == [("x", "p q"), ("y", "r")]


def test_samples_sample_at_the_models_temperatures_unless_told(tiny_setup, tmp_path):
    "`samples` and `continuation` measure what the demo plays: demo.json's temperatures, else 0.99; --temperature wins."
    import argparse
    d, _ = tiny_setup
    args = lambda t=None: argparse.Namespace(models=str(d / "models"), temperature=t)
    assert m._temperature(args()) == (0.99, 0.99, 0.99)
    (d / "models" / "demo.json").write_text(json.dumps({"temperature": [0.05, 0.1, 0.8]}))
    try:
        assert m._temperature(args()) == (0.05, 0.1, 0.8)
        assert m._temperature(args([0.7])) == (0.7, 0.7, 0.7) and m._temperature(args([0.1, 0.2, 0.3])) == (0.1, 0.2, 0.3)
        with pytest.raises(SystemExit, match="one value \\(every level\\) or three"): m._temperature(args([0.5, 0.6]))
        out = m.main(["samples", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--out", str(tmp_path / "s"),
                      "--n", "1", "--seconds", "0.2"])
        assert out["temperature"] == [0.05, 0.1, 0.8]
    finally: (d / "models" / "demo.json").unlink()


def test_samples_take_the_window_hops_asked_for(tiny_setup, tmp_path, monkeypatch):
    "`--hop-fraction` reaches every request `samples` makes and is reported; without it, the library's default (the demo's)."
    import jukebox_nb.sampling as S
    d, _ = tiny_setup
    seen, real = [], S.sample
    monkeypatch.setattr(S, "sample", lambda models, req: seen.append(req.hop_fraction) or real(models, req))
    run = lambda *hop: m.main(["samples", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--out", str(tmp_path / "s"),
                               "--n", "2", "--seconds", "0.2", *hop])
    assert run()["hop_fraction"] == list(S.SampleRequest().hop_fraction) and seen == [S.SampleRequest().hop_fraction] * 2
    seen.clear()
    assert run("--hop-fraction", "0.25", "0.5", "0.125")["hop_fraction"] == [0.25, 0.5, 0.125] and seen == [(0.25, 0.5, 0.125)] * 2


def test_code_motion_tells_held_codes_from_shuffled_ones():
    "benchmarks/vqvae_design.py: codes that hold for 8 steps beat their shuffled chance; random codes do not."
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("vqvae_design", ROOT / "benchmarks" / "vqvae_design.py")
    d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
    rng = np.random.default_rng(0)
    held = [np.repeat(rng.integers(0, 64, 50), 8)]  # 400 codes, runs of 8
    got = d.code_motion(held, hop_seconds=0.01)
    assert got["same_code"] == pytest.approx(7 / 8, abs=0.02) and got["chance"] < 0.1
    assert got["run_ms"] == pytest.approx(80, rel=0.1) and got["codes_used"] <= 50
    noisy = d.code_motion([rng.integers(0, 64, 400)], hop_seconds=0.01)
    assert abs(noisy["same_code"] - noisy["chance"]) < 0.03 and noisy["run_ms"] < 12 and noisy["bits"] > 5.5


def test_label_bits_score_every_pair_and_own_matches_the_dataset(tiny_setup, tmp_path):
    "(e) --labels: each window under every (artist, genres) pair; its own pair's bits are those of the dataset's label vector."
    import torch
    from torch.utils.data import default_collate
    from jukebox_nb.checkpoints import load_pretrained
    from jukebox_nb.data import Track, write_metadata
    from jukebox_nb.training import CodesDataset, encode_corpus, prior_inputs
    d, _ = tiny_setup
    for i, root in enumerate((48, 53, 55, 57)):  # two artists of two pieces each, one genre each
        sf.write(_mkdir(tmp_path / "corpus") / f"p{i}.wav", tone([midi_hz(n) for n in (root, root + 4, root + 7)], 3.0, sr=44100), 44100)
    write_metadata(tmp_path / "corpus" / "metadata.jsonl", [Track(f"p{i}.wav", "ab"[i % 2], ("gh"[i % 2],), f"p{i}", "CC0-1.0", "test")
                                                            for i in range(4)])
    vq = load_pretrained(d / "models" / "vqvae", kind="vqvae")
    codes = encode_corpus(vq, tmp_path / "corpus", cache_dir=tmp_path / "codes")
    prior = load_pretrained(d / "models" / "prior_level_2", kind="prior").eval()
    torch.nn.init.normal_(prior.y_emb.artist_emb.emb.weight, std=1.0, generator=torch.Generator().manual_seed(0))  # labels that matter
    ds = CodesDataset(codes, prior.cfg, "all", artist_ids={"a": 1, "b": 2}, genre_ids={"g": 1, "h": 2})
    pairs, own, bits = m.label_bits(prior, ds, n_windows=6, batch=4)
    assert pairs == [("a", ("g",)), ("b", ("h",))] and bits.shape == (6, 2) and set(own.tolist()) == {0, 1}
    items = [ds[int(i)] for i in np.linspace(0, len(ds) - 1, 6).round().astype(int)]
    with torch.no_grad(): mine = prior(*prior_inputs(default_collate(items))[:2]).gen_loss.numpy()
    np.testing.assert_allclose(bits[np.arange(6), own], mine, atol=1e-5)
    assert np.abs(bits[:, 0] - bits[:, 1]).max() > 1e-4  # the other pair really was fed
    s = m.label_summary(pairs, own, bits)
    assert s["chance"] == 0.5 and s["pairs"] == ["a / g", "b / h"] and 0 <= s["accuracy"] <= 1
    assert s["gain"] == pytest.approx(float((bits[np.arange(6), 1 - own] - bits[np.arange(6), own]).mean()), abs=1e-4)
    with torch.no_grad(): prior.y_emb.artist_emb.emb.weight[2] = prior.y_emb.artist_emb.emb.weight[1]  # b sounds like a ...
    prior.y_emb.bow_genre_emb.emb.weight.data[2] = prior.y_emb.bow_genre_emb.emb.weight.data[1]  # ... and h like g
    _, _, same = m.label_bits(prior, ds, n_windows=6, batch=4)
    assert m.label_summary(pairs, own, same)["gain"] == 0  # labels the prior cannot tell apart are worth nothing
    with pytest.raises(SystemExit, match="at least two"):
        m.label_bits(prior, CodesDataset(d / "codes", prior.cfg, "all", artist_ids={"a": 1}, genre_ids={"g": 1}))


def test_copied_runs_find_a_planted_copy_and_not_new_codes():
    "(g) a clip holding 100 codes of a training piece is found copied up to 64-code runs; fresh random codes are not."
    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 512, 2000) for _ in range(3)]
    planted = np.concatenate([rng.integers(0, 512, 50), pieces[1][700:800], rng.integers(0, 512, 50)])
    fresh = rng.integers(0, 512, 200)
    assert np.array_equal(m.ngram_keys(pieces[1][700:716], 8)[:3], m.ngram_keys(planted, 8)[50:53])  # same runs, same keys
    assert len(np.unique(m.ngram_keys(fresh, 8))) == len(fresh) - 7  # distinct runs, distinct keys
    out = m.copied_runs([planted, fresh, fresh[:5]], pieces)
    share = out["share_found_in_training"]
    assert out["longest_found"] == [64, 0, 0]  # 100 copied codes: runs of 64 fit, of 128 not
    assert share["8"]["per_clip"][0] == pytest.approx(93 / 193, abs=1e-4) and share["8"]["per_clip"][1] == 0
    assert share["8"]["per_clip"][2] is None and share["128"]["mean"] == 0  # a clip shorter than n has no runs to check


def test_copying_command(tiny_setup):
    "(g) end to end on the tiny models: top-level codes of each request checked against the training pieces' codes."
    d, codes = tiny_setup
    out = m.main(["copying", "--models", str(d / "models"), "--corpus", str(d / "corpus"), "--codes", str(codes),
                  "--n", "2", "--seconds", "0.5", "--seed", "3"])
    json.dumps(out)
    assert [r["seed"] for r in out["requests"]] == [3, 4] and out["training_pieces"] == 2 and out["codes_per_clip"] >= 0.5 * 44100 / 128
    s = out["samples"]
    assert len(s["longest_found"]) == 2 and all(0 <= v["mean"] <= 1 for v in s["share_found_in_training"].values() if v["mean"] is not None)
    assert out["held_out_count"] == 0 and out["held_out_pieces"]["longest_found_median"] is None  # 3 s pieces: none reaches 5 s + 0.5 s
