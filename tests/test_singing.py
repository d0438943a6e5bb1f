"""The syllable-event counter and the text syllable rule of benchmarks/singing.py (issue 16) on signals whose answer
is known: a train of sung-like syllables (harmonic vowels with consonant bursts), noise, silence, a held note."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("singing", ROOT / "benchmarks" / "singing.py")
m = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m)
SR = 22050


def syllable_train(durations, sr=SR, gap=0.05, seed=0):
    """A 'sung' line: per syllable a consonant (15 ms noise burst), a harmonic vowel of the duration (20 ms attack, decaying
    to 30% over its last 100 ms, as festival's syllables do), then a gap."""
    rng, out, starts = np.random.default_rng(seed), [], []
    f0 = 220.0
    for k, d in enumerate(durations):
        t = np.arange(int(d * sr)) / sr
        hz = f0 * 2 ** (rng.integers(0, 8) / 12)
        v = sum(np.sin(2 * np.pi * hz * h * t) / h for h in range(1, 8))
        v *= np.minimum(1, t / 0.02) * np.clip(0.3 + 0.7 * (d - t) / 0.1, 0.3, 1) * np.minimum(1, (d - t) / 0.01)  # attack, decay, fade
        starts.append(sum(len(x) for x in out) / sr)
        out += [0.02 * rng.standard_normal(int(0.015 * sr)), 0.2 * v / np.abs(v).max(), np.zeros(int(gap * sr))]
    return np.concatenate(out).astype(np.float32), np.array(starts)


def test_counts_the_syllables_of_a_sung_line():
    durs = np.random.default_rng(1).choice([0.3, 0.45, 0.6, 0.9, 1.4], 40)
    y, starts = syllable_train(durs)
    ev = m.syllable_events(y, SR)
    assert abs(len(ev) - 40) <= 2, len(ev)
    # each event lies inside one syllable (its start to the next one's)
    bins = np.searchsorted(starts, ev, side="right") - 1
    assert len(set(bins.tolist())) >= 38


def test_accompaniment_does_not_add_events():
    durs = [0.5] * 30
    y, _ = syllable_train(durs, gap=0.06)
    t = np.arange(len(y)) / SR
    organ = 0.05 * sum(np.sin(2 * np.pi * f * t) for f in (110.0, 165.0, 220.0))  # held chord under the voice
    assert abs(len(m.syllable_events(y + organ.astype(np.float32), SR)) - 30) <= 2


def test_noise_silence_and_a_held_note_have_no_syllables():
    assert len(m.syllable_events(np.zeros(5 * SR, np.float32), SR)) == 0
    assert len(m.syllable_events((0.1 * np.random.default_rng(0).standard_normal(10 * SR)).astype(np.float32), SR)) <= 1
    assert len(m.syllable_events(m.pink_noise(10.0), m.SR)) <= 1
    y, _ = syllable_train([8.0])
    assert len(m.syllable_events(y, SR)) == 1


def test_legato_without_a_dip_merges():
    "The documented limit: flat vowels joined by 30 ms of silence are one swell after the 150 ms smoothing."
    y, _ = syllable_train([0.6] * 10, gap=0.0)
    t = np.arange(len(y)) / SR
    flat = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    flat[(t % 0.615) < 0.03] = 0
    assert len(m.syllable_events(flat, SR)) <= 3


def test_fast_syllables_are_not_merged_below_the_gap():
    y, _ = syllable_train([0.2] * 20, gap=0.06)  # 3.8 syllables per second
    assert abs(len(m.syllable_events(y, SR)) - 20) <= 2


@pytest.mark.parametrize("word,n", [("Leben", 2), ("auch", 1), ("freuet", 2), ("Israel", 3), ("Filium", 3), ("wieder", 2),
                                    ("entstehet", 3), ("Christ", 1), ("brachiassai", 4), ("mir's", 1), ("Vertrauen", 3)])
def test_word_syllables(word, n):
    assert m.word_syllables(word) == n


def test_text_syllables_and_the_linear_share():
    assert m.text_syllables("Ach wie fluchtig, ach wie nichtig!") == 8
    assert m.expected_syllables("aa bb cc dd", 10.0) == 4
    assert m.expected_syllables("aa bb cc dd", 5.0, song_seconds=10.0) == 2  # words starting in the first half of the text
    assert m.expected_syllables("aa bb cc dd", 10.0, song_seconds=8.0) == 4


def _corpus(tmp: Path) -> Path:
    "A corpus folder of two 'sung' songs with syllable timing and one instrumental track."
    rows = []
    for k, n in enumerate((12, 20)):
        y, starts = syllable_train([0.5] * n, seed=k)
        sf.write(tmp / f"song{k}.wav", y, SR)
        words = " ".join(["la"] * n)
        rows.append(dict(path=f"song{k}.wav", artist="a", genres=["g"], lyrics=words, source="a cappella: no accompaniment",
                         syllables=[[float(s), float(s) + 0.5, "la", i] for i, s in enumerate(starts)]))
    t = np.arange(4 * SR) / SR
    sf.write(tmp / "organ.wav", (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    rows.append(dict(path="organ.wav", artist="b", genres=["g"]))
    (tmp / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp


def test_validate_and_samples_commands(tmp_path, capsys):
    c = _corpus(tmp_path)
    assert m.main(["validate", str(c), "--noise-seconds", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    e = out["events_vs_syllables"]["a_cappella"]
    assert e["n"] == 2 and e["within_20pct"] == 1.0 and out["text_rule_vs_syllables"]["max"] == 0.0
    assert out["instrumental"]["n"] == 1 and out["instrumental"]["events_per_second"]["max"] <= 0.5
    (c / "labels.jsonl").write_text(json.dumps(dict(path="song1.wav", lyrics=" ".join(["la"] * 20))) + "\n"
                                    + json.dumps(dict(path="song0.wav", lyrics=" ".join(["la"] * 40))) + "\n")
    assert m.main(["samples", str(c)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [r["lyric_syllables"] for r in s["samples"]] == [20, 40]
    assert abs(s["samples"][0]["ratio"] - 1) <= 0.1 and s["samples"][1]["ratio"] < 0.4  # song0 sings 12 of 40 asked
    assert s["within_20pct"] == 0.5


def test_demo_folders_count_the_words_the_opening_reaches(tmp_path, capsys):
    "A demo sings the first 10 s of a 20 s song: by the linear rule it should reach the first half of the words."
    d = tmp_path / "demo"; d.mkdir()
    y, _ = syllable_train([0.5] * 16)
    sf.write(d / "sample_level_0.wav", y, SR)
    secs = len(y) / SR
    (d / "demo_state.json").write_text(json.dumps(dict(request=dict(lyrics=" ".join(["la"] * 32), song_seconds=0.0), song_seconds=2 * secs)))
    assert m.main(["samples", str(tmp_path)]) == 0
    row = json.loads(capsys.readouterr().out)["samples"][0]
    assert row["lyric_syllables"] == 16 and abs(row["ratio"] - 1) <= 0.15, row


def test_samples_without_lyrics_fail_clearly(tmp_path):
    (tmp_path / "labels.jsonl").write_text(json.dumps(dict(path="x.wav", artist="a")) + "\n")
    with pytest.raises(SystemExit, match="without \"lyrics\""): m.main(["samples", str(tmp_path)])
