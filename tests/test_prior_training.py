"""Prior training on cached codes (nbs/11_training.ipynb): `encode_corpus` is resumable and stale-aware,
`CodesDataset` windows carry the prior's units, `train_prior` resumes on the same loss trajectory, runs in
bf16 and on 2 processes, and a tiny prior trains sharded with FSDP2 on 2 CPU processes."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from jukebox_nb.audio import save_wav
from jukebox_nb.checkpoints import load_pretrained
from jukebox_nb.data import MusicDataset, Track, read_metadata, write_metadata
from jukebox_nb.prior import Prior, PriorConfig
from jukebox_nb.training import (CODES_FILE, CodesDataset, ToneDataset, _code_file, checkpoint_dirs, encode_corpus,
                                 read_codes_index, read_metrics, train_prior)
from jukebox_nb.vqvae import VQVAE, VQVAEConfig
from cpu_launch import accelerate_launch, free_port

ROOT = Path(__file__).resolve().parents[1]


def make_corpus(root: Path, n: int = 4, seconds: float = 1.0) -> Path:
    "n generated tracks of `seconds`, two artists, one or two genres."
    tones = ToneDataset(n=n, length=int(44100 * seconds))
    for i in range(n): save_wav(root / f"t{i}.wav", tones[i]["audio"])
    write_metadata(root / "metadata.jsonl", [Track(f"t{i}.wav", f"artist{i % 2}", ("ambient", "test")[: 1 + i % 2],
                                                   f"tone {i}", "CC0-1.0", "generated") for i in range(n)])
    return root


@pytest.fixture(scope="module")
def codes(tmp_path_factory) -> Path:
    root = make_corpus(tmp_path_factory.mktemp("corpus"))
    torch.manual_seed(0)
    return encode_corpus(VQVAE(VQVAEConfig.preset("tiny")), root, root / "codes", progress=False)


def mtimes(d: Path, paths, level=0): return [_code_file(d, p, level).stat().st_mtime_ns for p in paths]


def test_encode_corpus_resumes_and_reencodes_only_what_is_stale(tmp_path):
    root = make_corpus(tmp_path / "corpus", n=3)
    torch.manual_seed(0); vq = VQVAE(VQVAEConfig.preset("tiny"))
    d = encode_corpus(vq, root, tmp_path / "codes", levels=(0, 2), progress=False)
    doc = read_codes_index(d); paths = doc["paths"]
    assert doc["complete"] and doc["levels"] == [0, 2] and doc["bins"] == 32
    for p in paths:
        for l, hop in ((0, 8), (2, 128)):
            z = np.load(_code_file(d, p, l), mmap_mode="r")
            assert z.dtype == np.int16 and z.shape == (44100 // hop,) and 0 <= z.min() and z.max() < 32
    t0 = mtimes(d, paths)
    # an interrupted run: one track's codes lost, index marked incomplete -> only that track is encoded again
    _code_file(d, paths[1], 0).unlink()
    idx = json.loads((d / CODES_FILE).read_text()); idx["complete"] = False; (d / CODES_FILE).write_text(json.dumps(idx))
    with pytest.warns(UserWarning, match="did not finish"): read_codes_index(d)
    encode_corpus(vq, root, d, levels=(0, 2), progress=False)
    t1 = mtimes(d, paths)
    assert [a == b for a, b in zip(t0, t1)] == [True, False, True] and read_codes_index(d)["complete"]
    # a changed audio file is re-encoded, the others are not
    os.utime(root / paths[2], ns=(time.time_ns(), time.time_ns() + 10**9))
    encode_corpus(vq, root, d, levels=(0, 2), progress=False)
    assert [a == b for a, b in zip(t1, mtimes(d, paths))] == [True, True, False]
    # another VQ-VAE (same config, other weights) invalidates every entry of the same folder
    torch.manual_seed(1)
    encode_corpus(VQVAE(VQVAEConfig.preset("tiny")), root, d, levels=(0, 2), progress=False)
    assert not any(a == b for a, b in zip(t1, mtimes(d, paths)))
    with pytest.raises(ValueError, match="must lie in 0..2"): encode_corpus(vq, root, d, levels=(3,), progress=False)
    with pytest.raises(FileNotFoundError, match="run encode_corpus"): read_codes_index(tmp_path)


def test_codes_dataset_windows_carry_the_priors_units(codes):
    doc = read_codes_index(codes)
    cfg = PriorConfig.preset("tiny", bins=32)
    ds = CodesDataset(codes, cfg, split="all")
    assert len(ds) == max(4, 4 * (44100 // 128) // 32)
    for i in (0, 7, len(ds) - 1):
        it = ds[i]; path = ds.paths[it["track"]]
        total, offset, length, artist, *genres = it["y"].tolist()
        assert (total, offset, length) == (44100, it["start"] * 128, 32 * 128)  # raw samples, like Metadata
        assert artist == ds.artist_ids[doc["tracks"][path]["artist"]] >= 1      # 0 stays "unknown"
        want = [ds.genre_ids[g] for g in doc["tracks"][path]["genres"]]
        assert genres == want + [-1] * (cfg.max_bow_genre_size - len(want))
        assert torch.equal(it["z"], torch.from_numpy(ds.codes(path, 2)[it["start"]:it["start"] + 32].astype(np.int64)))
    first = [ds[i]["start"] for i in range(5)]
    assert [ds[i]["start"] for i in range(5)] == first  # seeded
    ds.set_epoch(1); moved = [ds[i]["start"] for i in range(5)]; ds.set_epoch(0)
    assert moved != first and [ds[i]["start"] for i in range(5)] == first  # a new epoch draws new windows, reproducibly
    up = CodesDataset(codes, PriorConfig.preset("tiny_upsampler", bins=32), split="all")
    for i in range(0, len(up), 11):
        it = up[i]; path = up.paths[it["track"]]
        assert it["start"] % 4 == 0 and "y" in it and it["y"].shape == (9,)
        z1, z2 = up.codes(path, 1), up.codes(path, 2)
        assert np.array_equal(it["z_cond"].numpy(), z2[it["start"] // 4: it["start"] // 4 + 8])
        assert np.array_equal(it["z"].numpy(), z1[it["start"]: it["start"] + 32])
    prior = Prior(PriorConfig.preset("tiny_upsampler", bins=32))
    batch = torch.utils.data.default_collate([up[0], up[1]])
    assert torch.isfinite(prior(batch["z"], batch["y"], batch["z_cond"]).loss)
    # same by-track split as MusicDataset
    for split in ("train", "valid"):
        music = MusicDataset(codes.parent, 4096, split=split, valid_fraction=0.5)
        assert CodesDataset(codes, cfg, split=split, valid_fraction=0.5).paths == [music.tracks[i].path for i in music.track_ids]


def test_codes_dataset_bad_input_is_named(codes):
    with pytest.raises(ValueError, match="bins=32"): CodesDataset(codes, PriorConfig.preset("tiny"))
    with pytest.raises(ValueError, match="hop"): CodesDataset(codes, PriorConfig.preset("tiny", bins=32, level=1))
    long = CodesDataset(codes, PriorConfig.preset("tiny", bins=32, n_ctx=512, blocks=16), split="all")
    assert len(long) == 0 and all("shorter than one window" in why for _, why in long.skipped)
    timing = CodesDataset(codes, PriorConfig.preset("tiny", bins=32, min_duration=2.0), split="all")
    assert len(timing) == 0 and "timing range" in timing.skipped[0][1]
    with pytest.raises(ValueError, match="no track of the train split"):
        train_prior(codes, 2, "tiny", steps=1, out_dir=codes.parent / "x", prior_overrides={"min_duration": 2.0}, progress=False)
    with pytest.raises(KeyError, match="artist 'artist0'"): CodesDataset(codes, PriorConfig.preset("tiny", bins=32), split="all", artist_ids={"x": 1})[0]


def run(codes, out, steps, **kw):
    return train_prior(codes, 2, "tiny", steps=steps, out_dir=out, batch_size=2, warmup_steps=2, ckpt_every=3,
                       log_every=1, valid_fraction=0.0, progress=False, **kw)


def test_train_prior_resumes_on_the_same_loss_trajectory(codes, tmp_path):
    straight = run(codes, tmp_path / "a", 6)
    first = run(codes, tmp_path / "b", 3)
    rest = run(codes, tmp_path / "b", 6)
    assert [r["step"] for r in rest.history] == [4, 5, 6]
    want = [r["loss"] for r in straight.history]
    assert [r["loss"] for r in first.history + rest.history] == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert want[-1] < want[0]
    for k, v in straight.model.state_dict().items(): assert torch.allclose(v, rest.model.state_dict()[k], atol=1e-6), k
    assert [r["step"] for r in read_metrics(tmp_path / "b" / "metrics.csv")] == list(range(1, 7))
    loaded = load_pretrained(checkpoint_dirs(tmp_path / "b")[-1])  # the checkpoint folder is a model folder
    assert isinstance(loaded, Prior) and loaded.cfg == rest.model.cfg
    for k, v in rest.model.state_dict().items(): assert torch.equal(v, loaded.state_dict()[k]), k
    from jukebox_nb.checkpoints import Vocab  # the label ids travel with the run, for sampling by name
    ds = CodesDataset(codes, rest.model.cfg, split="all")
    assert Vocab.find(tmp_path / "b").metadata("artist1", "test", total_length=44100).artist == ds.artist_ids["artist1"]
    with pytest.raises(ValueError, match="another prior config"):
        train_prior(codes, 2, "tiny", steps=7, out_dir=tmp_path / "b", prior_overrides={"depth": 4}, progress=False)


def test_train_prior_resumes_past_a_truncated_newest_checkpoint(codes, tmp_path):
    "Checkpoints at 3 and 6, step 6's weights cut short: the resume warns once and redoes steps 4-6 from step 3."
    straight = run(codes, tmp_path / "a", 6)
    run(codes, tmp_path / "b", 6)
    w = checkpoint_dirs(tmp_path / "b")[-1] / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.warns(UserWarning, match=r"damaged checkpoint \(step_00000006: .*resuming from step_00000003"):
        rest = run(codes, tmp_path / "b", 6)
    assert [r["step"] for r in rest.history] == [4, 5, 6]
    assert [r["loss"] for r in rest.history] == pytest.approx([r["loss"] for r in straight.history[3:]], rel=1e-6, abs=1e-7)
    for k, v in straight.model.state_dict().items(): assert torch.allclose(v, rest.model.state_dict()[k], atol=1e-6), k


def test_fine_tuning_starts_from_the_given_prior_with_checkpointing(codes, tmp_path):
    base = run(codes, tmp_path / "base", 2).model
    kw = dict(steps=2, batch_size=2, warmup_steps=1, lr=1e-12, progress=False)  # lr ~0: the weights stay where they start
    tuned = train_prior(codes, 2, init=checkpoint_dirs(tmp_path / "base")[-1], activation_checkpointing=True,
                        out_dir=tmp_path / "ft", **kw).model
    assert tuned.cfg.checkpoint and tuned.cfg.depth == base.cfg.depth
    for k, v in base.state_dict().items(): assert torch.allclose(v, tuned.state_dict()[k], atol=1e-6), k
    fresh = train_prior(codes, 2, "tiny", out_dir=tmp_path / "fresh", **kw).model
    assert any(not torch.allclose(v, fresh.state_dict()[k], atol=1e-5) for k, v in base.state_dict().items())  # base moved ~1e-4
    with pytest.raises(ValueError, match="models level 2"):
        train_prior(codes, 1, init=base, out_dir=tmp_path / "x", **kw)


def test_bf16_autocast_on_cpu(codes, tmp_path):
    res = train_prior(codes, 1, "tiny_upsampler", steps=2, out_dir=tmp_path, batch_size=2, warmup_steps=1,
                      mixed_precision="bf16", progress=False)
    assert res.state.accelerator.mixed_precision == "bf16" and all(np.isfinite(r["loss"]) for r in res.history)


def launch(args, timeout=300, **env):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
    p = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def test_two_processes_train_a_prior_in_step(codes, tmp_path):
    "accelerate launch, 2 CPU processes (gloo, DDP): parameters equal across ranks, moved from the start."
    accelerate_launch("prior_ddp_check.py", "--codes", codes, "--out", tmp_path, "--steps", "3")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0]["init"].keys() == ranks[0]["final"].keys()
    for k, v in ranks[0]["final"].items(): assert torch.equal(v, ranks[1]["final"][k]), k
    assert any(not torch.equal(v, ranks[0]["init"][k]) for k, v in ranks[0]["final"].items())
    assert ranks[0]["batches"] != ranks[1]["batches"]  # each rank trained on its own windows
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.csv")] == [1, 2, 3]
    loaded = load_pretrained(checkpoint_dirs(tmp_path / "run")[-1])
    for k, v in loaded.state_dict().items(): assert torch.equal(v, ranks[0]["final"][k]), k


def test_fsdp2_shards_a_tiny_prior_on_two_cpu_processes(tmp_path):
    "torch FSDP2 `fully_shard` per block on gloo: same losses and weights as one process on the whole batch."
    launch([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
            str(ROOT / "tests" / "fsdp_check.py"), "--out", str(tmp_path)])
    got = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    ref = torch.load(tmp_path / "reference.pt")
    assert got[0]["local_numel"] < ref["numel"] * 0.75  # each rank holds about half the parameters
    assert got[0]["losses"] == pytest.approx(ref["losses"], rel=1e-5)
    for k, v in ref["state"].items(): assert torch.allclose(got[0]["state"][k], v, atol=1e-5), k
    assert got[0]["resumed_losses"] == pytest.approx(ref["losses"][2:], rel=1e-5)  # full-state save/load round trip
    for k, v in ref["state"].items(): assert torch.allclose(got[0]["plain"][k], v, atol=1e-5), k  # the plain Prior a checkpoint saves


def test_fsdp_config_is_valid_for_accelerate_and_names_our_block():
    from accelerate.commands.config.config_args import ClusterConfig
    import jukebox_nb.transformer as tr
    cfg = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "accelerate" / "fsdp.yaml"))
    assert cfg.distributed_type == "FSDP" and cfg.fsdp_config["fsdp_version"] == 2
    block = getattr(tr, cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"])
    assert any(isinstance(m, block) for m in Prior(PriorConfig.preset("tiny")).modules())
    assert not cfg.fsdp_config["fsdp_activation_checkpointing"]  # the prior's own checkpointing is used instead


def test_lyrics_priors_get_the_lyric_window_of_each_track(tmp_path):
    from jukebox_nb.conditioning import LyricTokenizer
    root = make_corpus(tmp_path / "corpus", n=2)
    lyrics = ["hello darkness my old friend " * 4, "row row row your boat gently down the stream " * 3]
    write_metadata(root / "metadata.jsonl", [Track(t.path, t.artist, t.genres, t.title, t.licence, t.source, lyrics=l)
                                             for t, l in zip(read_metadata(root / "metadata.jsonl"), lyrics)])
    torch.manual_seed(0)
    d = encode_corpus(VQVAE(VQVAEConfig.preset("tiny")), root, tmp_path / "codes", levels=(2,), progress=False)
    for preset in ("tiny_lyrics", "tiny_single"):
        cfg = PriorConfig.preset(preset, bins=32)
        ds = CodesDataset(d, cfg, split="all")
        tok = LyricTokenizer(v3=cfg.n_vocab == 79)
        for i in range(0, len(ds), 5):
            it = ds[i]
            text = tok.decode(it["y"][-cfg.n_tokens:].tolist())
            assert len(text) == cfg.n_tokens and text in lyrics[int(ds.paths[it["track"]][1])]
        batch = torch.utils.data.default_collate([ds[0], ds[1]])
        assert torch.isfinite(Prior(cfg)(batch["z"], batch["y"]).loss)


def test_fsdp_launch_on_cpus_is_refused_not_run_as_separate_copies(codes, tmp_path):
    "Accelerate 1.x shards on CUDA only; on CPUs the FSDP config must fail loudly instead of training 2 unsynced models."
    p = accelerate_launch("prior_ddp_check.py", "--codes", codes, "--out", tmp_path, "--steps", "1",
                          config_file=ROOT / "configs" / "accelerate" / "fsdp.yaml", check=False)
    assert p.returncode != 0 and "launched for FSDP" in p.stdout + p.stderr, p.stdout[-2000:] + p.stderr[-2000:]
    assert not checkpoint_dirs(tmp_path / "run")


def test_mini_lyrics_preset_has_the_5b_lyrics_structure_at_a_bundle_size():
    "The demo lyrics prior (issue 16): a lyric encoder, an encoder-decoder layer to align with, under 12 MB of float32."
    from jukebox_nb.prior import Prior, PriorConfig
    from jukebox_nb.transformer import attn_schedule
    c = PriorConfig.preset("mini_lyrics", bins=512, sr=22050, hop_length=512)
    assert c.lyrics == "separate" and c.n_tokens == 256 and attn_schedule(c.attn_order, c.depth).count("enc_dec") == 1
    assert c.alignment_layer_head() == (9, 0) and c.n_ctx * c.hop_length / c.sr > 20  # windows of tens of seconds
    p = Prior(c)
    assert p.lyric_encoder is not None and 4 * sum(x.numel() for x in p.parameters()) < 12e6
