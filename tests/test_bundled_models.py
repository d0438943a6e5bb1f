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
