"The committed results of nbs/paper/lyrics_alignment.ipynb (paper Fig. 3): structure and invariants only."
import json
import math
from pathlib import Path

import pytest

PAPER = Path(__file__).resolve().parents[1] / "nbs" / "paper"
RES = json.loads((PAPER / "results" / "lyrics_alignment.json").read_text())
METRICS = ("word", "within_one_word", "mass")


def _scores(d):
    assert d["frames"] > 0
    for m in METRICS: assert 0.0 <= d[m] <= 1.0 and math.isfinite(d[m]), (m, d)
    assert d["word"] <= d["within_one_word"] + 1e-12  # the tolerant score contains the exact one


def test_run_is_recorded():
    assert "nbdev_test --path nbs/paper/lyrics_alignment.ipynb --flags slow" in RES["command"]
    assert RES["threads"] == 1 and RES["torch"] and RES["date"]
    for k in ("build", "encode", "train", "evaluate"): assert RES["seconds"][k] > 0
    assert RES["training"]["steps"] == RES["size"]["steps"]
    assert RES["training"]["first_loss"] is not None and math.isfinite(RES["training"]["last"]["loss"])


def test_corpus_and_prior_match_the_size():
    s, c = RES["size"], RES["prior_config"]
    assert RES["corpus"]["songs"] == s["n_songs"] and RES["corpus"]["valid_songs"] >= 1
    assert (c["n_ctx"], c["n_tokens"], c["width"], c["depth"], c["heads"]) == (s["n_ctx"], s["n_tokens"], s["width"], s["depth"], s["heads"])
    assert c["lyrics"] == "separate" and c["level"] == 2 and c["hop_length"] == 128


def test_heads_and_selection():
    assert RES["heads"] and set(RES["diagonality_train"]) == set(RES["heads"])
    assert RES["best_head"] == max(RES["heads"], key=RES["diagonality_train"].get)  # picked on training songs only
    for d in RES["diagonality_train"].values(): assert -1.0 <= d <= 1.0


@pytest.mark.parametrize("split", ["train", "valid"])
def test_pooled_scores(split):
    S = RES["summary"][split]
    for k in ("best_head", "linear", "linear_sung", "window_diagonal", "chance"): _scores(S[k])
    for v in S["heads"].values(): _scores(v)
    assert S["best_head"] == S["heads"][RES["best_head"]]
    assert S["chance"]["word"] <= S["reachable"] + 1e-9  # a random visible character can only hit a visible word
    if split == "valid":
        _scores(S["untrained_same_head"])
        o = S["other_windows"]  # the trained head read with the other window rule
        assert {o["rule"], RES["size"]["windows"]} == {"linear", "aligned"}
        _scores(o["best_head"]); _scores(o["chance"])
    n = sum(v["heads"][RES["best_head"]]["frames"] for v in RES["songs"].values() if v["split"] == split)
    assert S["best_head"]["frames"] == n  # pooled over exactly the songs listed


def test_lyric_gain_and_training_curve():
    for sp in ("train", "valid"):
        g = RES["training"]["lyric_gain"][sp]
        assert g["windows"] > 0 and all(math.isfinite(g[k]) for k in ("right", "other", "gain"))
        assert abs(g["gain"] - (g["other"] - g["right"])) < 1e-4  # mean of differences = difference of means
    steps = [r[0] for r in RES["training"]["curve"]]
    assert steps == sorted(steps) and steps[-1] == RES["size"]["steps"]
    assert all(math.isfinite(v) for r in RES["training"]["curve"] for v in r[1:])


def test_letter_information():
    i = RES["corpus"]["letter_information"]
    assert i["frames"] > 0 and all(math.isfinite(v) and v >= -1e-9 for v in i.values())
    # "singing" is a function of the letter and the code carries at most its own entropy (plug-in MI obeys both)
    assert i["singing"] <= i["letter"] + 1e-9 <= i["code_entropy"] + 2e-9


def test_figure_data_and_png():
    f, s = RES["figure"], RES["size"]
    assert RES["songs"][f["song"]]["split"] == "valid" and f["head"] == RES["best_head"] and f["rule"] == s["windows"]
    assert len(f["window"]) == s["n_ctx"] // f["pool"] and all(len(r) == s["n_tokens"] for r in f["window"])
    assert all(abs(sum(r) - 1) < 0.05 for r in f["window"])  # rows of a softmax (rounded to 3 decimals)
    assert len(f["chars"]) == s["n_tokens"] and len(f["song_words"]) == RES["songs"][f["song"]]["words"]
    assert all(0 <= a < f["song_chars"] for a in f["song_argmax"])
    png = PAPER / "figures" / "lyrics_alignment.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 150_000
