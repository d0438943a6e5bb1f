"""The committed results of the VQ-VAE paper notebooks (nbs/paper/vqvae_*.ipynb, issue #9): structure, provenance
and invariants that must hold whatever the numbers are (no expected orderings are asserted)."""
import json
import math
from pathlib import Path

import pytest

PAPER = Path(__file__).resolve().parents[1] / "nbs" / "paper"
LEVELS = ["0", "1", "2"]
HOPS = {"0": 8, "1": 32, "2": 128}


def load(name: str) -> dict:
    return json.loads((PAPER / "results" / f"{name}.json").read_text())


def check_provenance(res: dict, notebook: str):
    p = res["provenance"]
    assert p["notebook"] == f"nbs/paper/{notebook}.ipynb" and p["command"].endswith(f"{notebook}.ipynb --flags slow")
    assert p["threads"] == 1 and p["wall_seconds"] > 0 and p["torch"] and p["date"][:2] == "20"
    assert res["setup"]["steps"] > 0 and res["eval"]["clips"] > 0 and res["eval"]["seconds"] > 0
    assert res["corpus"]["tracks"] > len(res["corpus"]["valid_tracks"]) > 0


def check_level(m: dict, bins: int | None):
    "One level's held-out metrics: finite SC (dB consistent with the linear mean by Jensen), sane codebook usage."
    assert math.isfinite(m["spectral_convergence_db"]) and m["spectral_convergence"] > 0
    # the dB figure is the mean of per-clip dB, which cannot exceed 20 log10 of the mean linear SC
    assert m["spectral_convergence_db"] <= 20 * math.log10(m["spectral_convergence"]) + 1e-3
    if bins is None:
        assert "codes_used" not in m
        return
    assert m["codebook_size"] == bins and 1 <= m["codes_used"] <= bins
    assert 0 <= m["entropy_bits"] <= math.log2(m["codes_used"]) + 1e-3
    assert m["perplexity"] == pytest.approx(2 ** m["entropy_bits"], rel=1e-3)


def check_curves(c: dict, steps: int, bins: int, levels: list[str]):
    "Training curves: increasing steps up to the run's end; batch entropy within [0, log2(bins)]."
    assert c["step"] == sorted(set(c["step"])) and c["step"][-1] == steps
    for l in levels:
        assert len(c[f"entropy/{l}"]) == len(c["step"]) == len(c[f"used/{l}"])
        assert all(0 <= e <= math.log2(bins) + 1e-3 for e in c[f"entropy/{l}"])
        assert all(1 <= u <= bins for u in c[f"used/{l}"])


def check_figure(name: str):
    f = PAPER / "figures" / name
    assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size < 150_000


def test_restarts_results():
    res = load("vqvae_restarts")
    check_provenance(res, "vqvae_restarts")
    bins = res["model_config"]["l_bins"]
    assert sorted(res["arms"]) == ["with restarts", "without restarts"]
    for arm in res["arms"].values():
        assert sorted(arm["levels"]) == LEVELS
        for m in arm["levels"].values(): check_level(m, bins)
        check_curves(arm["curves"], res["setup"]["steps"], bins, LEVELS)
        assert arm["train_seconds"] > 0
    assert res["arms"]["with restarts"]["run"] != res["arms"]["without restarts"]["run"]
    assert sorted(res["figure4_clip"]["sc_db"]) == LEVELS and 0 <= res["figure4_clip"]["index"] < res["eval"]["clips"]
    check_figure("vqvae_fig5_entropy.png")  # Figure 4 (with this model's row) is drawn by vqvae_ablations


def test_codebook_results():
    res = load("vqvae_codebook")
    check_provenance(res, "vqvae_codebook")
    assert list(res["arms"]) == ["256", "2048", "no quantisation"]
    for name, arm in res["arms"].items():
        bins = None if name == "no quantisation" else int(name)
        check_level(arm["level0"], bins)
        if bins is None: assert arm["bitrate"] is None and list(arm["curves"]) == ["step"]
        else:
            assert arm["bitrate"] == pytest.approx(44100 / 8 * math.log2(bins))
            check_curves(arm["curves"], res["setup"]["steps"], bins, ["0"])
    assert len({a["params"] for a in res["arms"].values()}) == 1  # the arms differ only in the (parameter-free) codebook


def test_ablations_results():
    res = load("vqvae_ablations")
    check_provenance(res, "vqvae_ablations")
    bins = res["model_config"]["l_bins"]
    assert list(res["arms"]) == ["full", "without spectral loss", "hierarchical"]
    for arm in res["arms"].values():
        assert sorted(arm["levels"]) == LEVELS
        for m in arm["levels"].values(): check_level(m, bins)
    hier = res["arms"]["hierarchical"]
    assert sorted(hier["joint_from_levels"]) == LEVELS and all(math.isfinite(v) for v in hier["joint_from_levels"].values())
    # all codes through the joint decoder is what level_metrics scores as the hierarchical model's level 0
    assert hier["joint_from_levels"]["0"] == pytest.approx(hier["levels"]["0"]["spectral_convergence_db"], abs=1e-2)
    for l, o in res["opus"].items():
        assert res["level_bitrates"][l] == pytest.approx(44100 / HOPS[l] * math.log2(bins), abs=1)
        assert o["opus_bitrate"] == max(o["target_bitrate"], 6000) and o["measured_bitrate"] > 0
        assert math.isfinite(o["spectral_convergence_db"])
    assert set(res["figure4_clip"]["sc_db"]) >= {"full", "without spectral loss", "hierarchical"}
    check_figure("vqvae_fig4.png")


def test_shared_full_model_gives_the_same_numbers():
    "The ablations' full model is the restarts notebook's run (same hash): on the same clips it must score the same."
    a, b = load("vqvae_restarts"), load("vqvae_ablations")
    assert a["arms"]["with restarts"]["run"] == b["arms"]["full"]["run"] and a["eval"] == b["eval"] and a["corpus"] == b["corpus"]
    for l in LEVELS:
        assert a["arms"]["with restarts"]["levels"][l] == pytest.approx(b["arms"]["full"]["levels"][l], abs=1e-3)
    # and Figure 4's clip, drawn by the ablations notebook, is the one the restarts notebook scored
    assert a["figure4_clip"]["index"] == b["figure4_clip"]["index"]
    assert list(a["figure4_clip"]["sc_db"].values()) == pytest.approx(b["figure4_clip"]["sc_db"]["full"], abs=1e-2)
