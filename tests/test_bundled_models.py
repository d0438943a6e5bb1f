"""The models shipped in the package load without a download and do what their model card says."""
import json

from jukebox_nb.audio import example_clip, load_audio
from jukebox_nb.checkpoints import load_pretrained
from jukebox_nb.cli import DEFAULT_VQVAE, main, reconstruct_clip


def test_bundled_vqvae_reconstructs_the_clip_as_its_card_says():
    vq = load_pretrained(DEFAULT_VQVAE, kind="vqvae")
    assert vq.cfg.hop_lengths == (8, 32, 128) and vq.cfg.sample_rate == 44100
    metrics = reconstruct_clip(vq, load_audio(example_clip()))["metrics"]
    card = vq.meta["metrics"]["bundled_clip"]  # measured when the weights were saved
    for level, bound in ((0, -18.0), (1, -12.0), (2, -4.0)):  # card: about -23 / -16 / -6 dB; random weights: about 0 dB
        got = metrics[level]["spectral_convergence_db"]
        assert got < bound, (level, got)
        assert abs(got - card[str(level)]["spectral_convergence_db"]) < 0.5, (level, got, card[str(level)])
    assert {"GPL-2+", "CC-BY-SA-3.0"} <= set(vq.meta["data"]["licences"])


def test_main_job_runs_on_the_bundled_clip(tmp_path):
    assert main(["reconstruct", "--out", str(tmp_path), "--seconds", "2"]) == 0
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["levels"]["0"]["spectral_convergence_db"] < -15


# ---- the demo priors (top level + two upsamplers) ----

import numpy as np
import pytest
import torch

from jukebox_nb.prior import Prior
from jukebox_nb.checkpoints import demo_defaults, demo_models_folder, load_demo_models
from jukebox_nb.sampling import SampleConfig, SampleRequest, sample


@pytest.fixture(scope="module")
def demo():
    torch.set_num_threads(1)
    return load_demo_models()


def test_demo_models_are_complete_small_and_labelled(demo):
    folder = demo_models_folder()
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert total < 30 * 2**20, f"bundled models take {total / 2**20:.1f} MB (aim: under 30 MB)"
    assert [demo.priors[l].cfg.level for l in (2, 1, 0)] == [2, 1, 0] and demo.priors[2].cfg.labels
    artists, genres = demo.vocab.names("artist"), demo.vocab.names("genre")
    d = demo_defaults()
    assert d["artist"] in artists and all(g in genres for g in d["genre"].split())
    assert {"Mattias Westlund", "Maxstack"} <= set(artists) and {"orchestral", "ambient"} <= set(genres)
    for l in (2, 1, 0):  # each prior carries its data, licences and held-out metrics
        meta = demo.priors[l].meta
        assert {"GPL-2+", "CC-BY-SA-3.0"} <= set(meta["data"]["licences"]) and meta["metrics"]["valid_bits_per_token"] < 9


def _clip_codes(demo):
    from jukebox_nb.audio import example_clip, load_audio
    x = torch.from_numpy(load_audio(example_clip(), sr=demo.sample_rate))[None]  # [1, T]
    x = x[:, : x.shape[1] // 128 * 128]
    with torch.no_grad(): return {l: demo.vqvae.encode(x, levels=l) for l in (2, 1, 0)}  # {level: [1, T_l]}


def test_trained_priors_predict_unseen_music_far_better_than_untrained_ones(demo):
    "Teacher-forced bits per code on the bundled clip (not in the training data): trained vs the same prior untrained."
    codes, meta = _clip_codes(demo), demo.request_metadata("Mattias Westlund", "orchestral folk", total_length=5 * 44100)
    from jukebox_nb.conditioning import tokenize
    for l in (2, 1, 0):
        p = demo.priors[l].eval(); c = p.cfg
        assert codes[l].shape[1] >= c.n_ctx  # 5 s: 1722 / 6890 / 27560 codes, a window is 1024
        z = codes[l][:, :c.n_ctx]
        y = tokenize([meta[l]], c.sample_length, c.max_bow_genre_size, c.n_tokens, c.n_artists, c.n_genres)
        zc = codes[l + 1][:, : c.n_ctx // c.cond_downsample] if c.upsampler else None
        torch.manual_seed(0); fresh = Prior(c).eval()
        with torch.no_grad(): trained, untrained = p(z, y, zc).gen_loss.item(), fresh(z, y, zc).gen_loss.item()
        assert trained < untrained - 1.0, (l, trained, untrained)  # e.g. about 6-7 vs 9+ bits


def test_demo_models_sample_music_through_all_levels(demo):
    meta = demo.request_metadata("Maxstack", "ambient electronic", total_length=180 * 44100)  # the first 1.0 s of a 3-minute piece
    res = sample(demo, SampleRequest(level_metadata=meta, seconds=1.0, levels=(2, 1, 0), seed=3), SampleConfig(report_every=256))
    raw = int(1.0 * 44100) // 128 * 128
    assert {l: tuple(t.shape) for l, t in res.tokens.items()} == {2: (1, raw // 128), 1: (1, raw // 32), 0: (1, raw // 8)}
    for l in (2, 1, 0):
        y = np.asarray(res.audio[l][0]).reshape(-1)
        assert y.shape == (raw,) and np.isfinite(y).all() and 0.002 < np.sqrt((y ** 2).mean()) < 1.0, l
    assert len(np.unique(res.tokens[0].numpy())) > 50  # not stuck on a few codes
