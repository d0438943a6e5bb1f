"""The models shipped in the package load without a download and do what their model card says."""
import json

import numpy as np
import pytest
import torch

from jukebox_nb.audio import example_clip, load_audio
from jukebox_nb.checkpoints import demo_defaults, demo_models_folder, demo_sets, find_demo_models, load_demo_models, load_pretrained
from jukebox_nb.cli import DEFAULT_VQVAE, main, reconstruct_clip
from jukebox_nb.prior import Prior
from jukebox_nb.sampling import SampleConfig, SampleRequest, sample

COMPOSERS = {"Johann Sebastian Bach", "Claudio Monteverdi", "Ryan's Mammoth Collection", "Wolfgang Amadeus Mozart"}
VOICES = {"Kal (festival)", "Ked (festival)", "Dita, Czech (festival)"}


def test_bundled_vqvae_reconstructs_the_clip_as_its_card_says():
    vq = load_pretrained(DEFAULT_VQVAE, kind="vqvae")
    assert vq.cfg.hop_lengths == (8, 64, 512) and vq.cfg.sample_rate == 22050  # the mini_22k_512 preset
    metrics = reconstruct_clip(vq, load_audio(example_clip(), sr=vq.cfg.sample_rate))["metrics"]
    card = vq.meta["metrics"]["bundled_clip"]  # measured when the weights were packed
    for level in (0, 1, 2):
        got = metrics[level]["spectral_convergence_db"]
        assert abs(got - card[str(level)]["spectral_convergence_db"]) < 0.5, (level, got, card[str(level)])
    assert metrics[0]["spectral_convergence_db"] < -12  # random weights: about 0 dB
    held = vq.meta["metrics"]["held_out"]  # the corpus's own held-out pieces reconstruct far better than the loop clip
    assert held["0"]["spectral_convergence_db"] < -15 and held["2"]["spectral_convergence_db"] < -2
    assert "MIT (FluidR3 soundfont)" in vq.meta["data"]["licences"] and vq.meta["data"]["pieces"] > 400


def test_main_job_runs_on_the_bundled_clip(tmp_path):
    assert main(["reconstruct", "--out", str(tmp_path), "--seconds", "2"]) == 0
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["levels"]["0"]["spectral_convergence_db"] < -12


# ---- the demo priors (top level + two upsamplers) ----

@pytest.fixture(scope="module")
def demo():
    torch.set_num_threads(1)
    return load_demo_models()


@pytest.fixture(scope="module")
def lyrics_set():
    torch.set_num_threads(1)
    return load_demo_models(find_demo_models("lyrics"))


def _size(folder, skip=()):
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not any(s in f.parts for s in skip))


def test_demo_models_are_complete_small_and_labelled(demo):
    folder = demo_models_folder()
    assert _size(folder, skip=("lyrics",)) < 30 * 2**20, f"the default set takes {_size(folder, ('lyrics',)) / 2**20:.1f} MB (at most 30 MB)"
    assert _size(folder) < 45 * 2**20, f"both sets take {_size(folder) / 2**20:.1f} MB (at most 45 MB)"
    assert set(demo_sets()) == {"default", "lyrics"}
    assert [demo.priors[l].cfg.level for l in (2, 1, 0)] == [2, 1, 0] and demo.priors[2].cfg.labels and not demo.priors[2].cfg.n_tokens
    artists, genres = demo.vocab.names("artist"), demo.vocab.names("genre")
    d = demo_defaults()
    assert d["artist"] in artists and all(g in genres for g in d["genre"].split()) and d["song_seconds"] <= 90
    assert COMPOSERS | VOICES <= set(artists) and {"baroque", "chorale", "fiddle", "madrigal", "quartet"} <= set(genres)
    for l in (2, 1, 0):  # each prior carries its data, licences and held-out metrics
        meta = demo.priors[l].meta
        assert "public-domain compositions" in meta["data"]["licences"] and meta["metrics"]["valid_bits_per_token"] < 9


def test_lyrics_set_borrows_the_default_vqvae_and_upsamplers(demo, lyrics_set):
    top = lyrics_set.priors[2].cfg
    assert top.n_tokens > 0 and top.lyrics != "none" and top.alignment_layer is not None  # the 5b_lyrics structure, small
    for a, b in ((lyrics_set.vqvae, demo.vqvae), (lyrics_set.priors[1], demo.priors[1]), (lyrics_set.priors[0], demo.priors[0])):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    artists = lyrics_set.vocab.names("artist")
    assert VOICES <= set(artists) and not COMPOSERS & set(artists)  # it offers the singers it learnt
    d = demo_defaults(find_demo_models("lyrics"))
    assert d["lyrics"] and d["artist"] in artists
    for name in artists:  # a voice is the same id for the top prior and for the upsamplers it borrows
        if name != "unknown": assert artists[name] == demo.vocab.names("artist")[name], name


def _clip_codes(models, seconds=5):
    x = torch.from_numpy(load_audio(example_clip(), sr=models.sample_rate))[None]  # [1, T]
    hop = models.hop(2)
    x = x[:, : x.shape[1] // hop * hop]
    with torch.no_grad(): return {l: models.vqvae.encode(x, levels=l) for l in (2, 1, 0)}  # {level: [1, T_l]}


def test_trained_upsamplers_predict_unseen_music_far_better_than_untrained_ones(demo):
    "Teacher-forced bits per code on the bundled clip (not in the training data): trained vs the same prior untrained."
    codes = _clip_codes(demo)
    meta = demo.request_metadata("Johann Sebastian Bach", "baroque chorale", total_length=60 * demo.sample_rate)
    from jukebox_nb.conditioning import tokenize
    for l in (1, 0):
        p = demo.priors[l].eval(); c = p.cfg
        n = min(c.n_ctx, codes[l].shape[1] // c.cond_downsample * c.cond_downsample)
        z, zc = codes[l][:, :n], codes[l + 1][:, : n // c.cond_downsample]
        y = tokenize([meta[l]], c.sample_length, c.max_bow_genre_size, c.n_tokens, c.n_artists, c.n_genres)
        torch.manual_seed(0); fresh = Prior(c).eval()
        with torch.no_grad(): trained, untrained = p(z, y, zc).gen_loss.item(), fresh(z, y, zc).gen_loss.item()
        assert trained < untrained - 1.0, (l, trained, untrained)


def test_demo_models_sample_music_through_all_levels(demo):
    sr = demo.sample_rate
    meta = demo.request_metadata("Ryan's Mammoth Collection", "folk fiddle", total_length=60 * sr)  # the first 3 s of a 60 s tune
    # 3 s: the middle upsampler's window (1024 codes of hop 64) is 2.97 s
    res = sample(demo, SampleRequest(level_metadata=meta, seconds=3.0, levels=(2, 1, 0), seed=3), SampleConfig(report_every=256))
    raw = 3 * sr // 512 * 512  # whole top-level codes (`sample` rounds down; the demo asks for whole codes)
    assert {l: tuple(t.shape) for l, t in res.tokens.items()} == {2: (1, raw // 512), 1: (1, raw // 64), 0: (1, raw // 8)}
    for l in (2, 1, 0):
        y = np.asarray(res.audio[l][0]).reshape(-1)
        assert y.shape == (raw,) and np.isfinite(y).all() and 0.002 < np.sqrt((y ** 2).mean()) < 1.0, l
    assert len(np.unique(res.tokens[0].numpy())) > 50  # not stuck on a few codes


def test_upsamplers_keep_the_top_levels_tones_at_the_sets_temperature(demo):
    """demo.json's upsampler temperature is what makes levels 1 and 0 tonal: given the real level-2 codes of the bundled
    clip (a tonal loop the models never saw), the bottom level's audio is about as tonal as the clip (low spectral
    flatness); at the library's 0.99 the same upsamplers return a noisy texture (about 10 times flatter)."""
    import librosa
    t = demo_defaults()["temperature"]
    assert t[0] <= 0.1 and t[1] <= 0.1 and 0.5 <= t[2] < 1  # nearly the most likely codes below; a little cooler than 0.99 on top
    x = torch.from_numpy(load_audio(example_clip(), sr=demo.sample_rate))[None]
    x = x[:, : 3 * demo.sample_rate // 512 * 512]  # 3 s: a whole middle-upsampler window
    z2 = demo.vqvae.encode(x, levels=2)
    meta = demo.request_metadata("Johann Sebastian Bach", "baroque chorale", total_length=60 * demo.sample_rate)
    flat = lambda y: float(np.median(librosa.feature.spectral_flatness(y=np.asarray(y, np.float32).reshape(-1), n_fft=2048, hop_length=512)))
    def bottom(temp):
        return sample(demo, SampleRequest(level_metadata=meta, seconds=x.shape[1] / demo.sample_rate, levels=(1, 0), prime_tokens={2: z2},
                                          seed=0, temperature=(temp, temp, 1.0))).audio[0][0]
    cool, hot, clip = flat(bottom(t[0])), flat(bottom(0.99)), flat(x[0].numpy())
    assert cool < 0.3 * hot and cool < 3 * clip, (cool, hot, clip)


def test_readme_python_example_for_the_bundled_models_runs(tmp_path, monkeypatch):
    "The README's Python example (sampling the bundled models at their demo.json temperatures) runs as written."
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "load_demo_models()" in b]
    assert len(blocks) == 1, f"expected one README example with load_demo_models(), found {len(blocks)}"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    doc = json.loads((tmp_path / "fiddle" / "result.json").read_text())
    assert doc["request"]["temperature"] == demo_defaults()["temperature"] and doc["complete"]
    assert all((tmp_path / "fiddle" / f"level_{l}" / "item_0.wav").is_file() for l in (2, 1, 0))


def test_lyrics_set_sings_given_words_and_aligns_them(lyrics_set):
    sr = lyrics_set.sample_rate
    meta = lyrics_set.request_metadata("Kal (festival)", "chorale", total_length=60 * sr, lyrics="sing a new song unto the morning")
    res = sample(lyrics_set, SampleRequest(level_metadata=meta, seconds=1.0, levels=(2,), seed=0))
    assert res.tokens[2].shape == (1, sr // 512)
    from jukebox_nb.studio import model_info
    info = model_info(lyrics_set)
    assert info.n_tokens == lyrics_set.priors[2].cfg.n_tokens and info.alignment is not None
