"""The committed results of nbs/paper/attention.ipynb (factorized vs dense attention, paper App. A / Fig. 6):
structure, provenance and the invariants any genuine run must satisfy. Observed orderings (which arm is
faster or reaches the lower loss) are deliberately not asserted."""
import json
import math
from pathlib import Path

import pytest

from jukebox_nb.transformer import attn_schedule

PAPER = Path(__file__).resolve().parents[1] / "nbs" / "paper"
RESULTS = PAPER / "results" / "attention.json"
FIGURES = [PAPER / "figures" / f"attention_{n}.png" for n in ("patterns", "loss", "cost")]
ARMS = {"factorized": 2, "dense": 0}
LAYER_PATTERNS = {"dense_masked", "dense", "block", "transpose_block", "prev_block"}


@pytest.fixture(scope="module")
def res():
    return json.loads(RESULTS.read_text())


def finite_pos(x) -> bool: return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_provenance(res):
    for k in ("experiment", "notebook", "command", "date", "torch", "threads", "wall_seconds", "load_avg", "config", "data", "size"):
        assert k in res, k
    assert res["notebook"] == "nbs/paper/attention.ipynb" and "--flags slow" in res["command"]
    assert res["threads"] == 1 and finite_pos(res["wall_seconds"]) and res["size"] == "small"


def test_config_and_data(res):
    c, d = res["config"], res["data"]
    assert c["n_ctx"] % c["blocks"] == 0 and c["steps"] % c["eval_every"] == 0
    for split in ("train", "valid"):
        assert d[split]["tracks"] >= 1 and d[split]["codes"] >= c["n_ctx"] * d[split]["tracks"]
    assert d["hop"] == 128 and d["bins"] > 1 and finite_pos(d["minutes"])  # top-level (level 2) codes


def test_arms_are_the_same_model_but_for_attention(res):
    c, arms = res["config"], res["arms"]
    assert set(arms) == set(ARMS)
    for name, order in ARMS.items():
        a = arms[name]
        assert a["attn_order"] == order and a["schedule"] == attn_schedule(order, c["depth"])
    assert arms["factorized"]["params"] == arms["dense"]["params"] > 0


def test_curves(res):
    c, uniform = res["config"], math.log2(res["data"]["bins"])
    evals = list(range(c["eval_every"], c["steps"] + 1, c["eval_every"]))
    logs = list(range(c["log_every"], c["steps"] + 1, c["log_every"]))
    for a in res["arms"].values():
        assert [e["step"] for e in a["eval"]] == evals and a["final"] == a["eval"][-1]
        assert [r["step"] for r in a["train_curve"]] == logs
        losses = [r["loss"] for r in a["train_curve"]] + [e[k] for e in a["eval"] for k in ("train_loss", "valid_loss")]
        assert all(finite_pos(x) and x < uniform + 3 for x in losses)  # bits per code; a uniform guess is log2(bins)
        t = [r["elapsed"] for r in a["train_curve"]]
        assert all(finite_pos(x) for x in t) and t == sorted(t)
        assert finite_pos(a["sec_per_step_train"]) and finite_pos(a["sec_per_step_bench"]) and finite_pos(a["kept_bytes"])


def test_paired_final_losses_match_the_curves(res):
    c, arms = res["config"], res["arms"]
    for split, p in res["paired_final"].items():
        assert split in ("train", "valid") and 1 <= p["windows"] <= c["eval_windows"]
        for a in ARMS:  # the same fixed windows as the last evaluation of the curve
            assert math.isclose(p[a], arms[a]["final"][f"{split}_loss"], abs_tol=1e-3)
        assert math.isclose(p["diff"], p["factorized"] - p["dense"], abs_tol=1e-6)
        assert math.isfinite(p["diff_se"]) and p["diff_se"] >= 0 and finite_pos(p["window_sd"])
    assert set(res["paired_final"]) == {"train", "valid"}


def test_layer_costs(res):
    c, rows = res["config"], res["layer_costs"]
    want = {(p, n) for p in LAYER_PATTERNS for n in c["scaling_n_ctx"] if p != "dense_masked" or n <= c["masked_max_n_ctx"]}
    assert {(r["pattern"], r["n_ctx"]) for r in rows} == want and len(rows) == len(want)
    assert all(finite_pos(r["kept_bytes"]) and finite_pos(r["seconds"]) for r in rows)
    by = {(r["pattern"], r["n_ctx"]): r["kept_bytes"] for r in rows}
    ns = sorted(c["scaling_n_ctx"])
    for a, b in zip(ns, ns[1:]):
        if b <= c["masked_max_n_ctx"]:  # the masked layer keeps the (n x n) scores: at least ~(b/a)^2 more
            assert by[("dense_masked", b)] > 0.75 * (b / a) ** 2 * by[("dense_masked", a)]
        for p in ("block", "transpose_block", "prev_block"):  # block_ctx fixed: memory linear in n_ctx
            assert by[(p, b)] < 1.25 * (b / a) * by[(p, a)]


def test_figures_are_small_pngs():
    for f in FIGURES:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size < 150_000, f
