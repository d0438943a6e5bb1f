"""Training loop (nbs/11_training.ipynb): resume reproduces the loss trajectory, atomic pruned
checkpoints, gradient accumulation, precision fallbacks, and codebooks kept in sync across 2 processes."""
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from cpu_launch import accelerate_launch
from jukebox_nb.checkpoints import load_pretrained
from jukebox_nb.core import set_seed
from jukebox_nb.training import ToneDataset, TrainConfig, checkpoint_dirs, read_metrics, train
from jukebox_nb.vqvae import VQVAE, VQVAEConfig, measure_bandwidth

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 2048  # samples per clip: 16 top-level tokens (the STFT loss needs more than 1024)


def data(n: int = 12) -> ToneDataset: return ToneDataset(n=n, length=LENGTH)


def tiny_vqvae(**overrides) -> VQVAE:
    "The `tiny` preset with its bandwidth measured from the generated clips."
    ds = data()
    bw = measure_bandwidth(ds[i]["audio"][None] for i in range(len(ds)))
    return VQVAE(VQVAEConfig.preset("tiny", bandwidth=bw, **overrides))


def run(out, total, ckpt_every, resume=True, model=tiny_vqvae, **kw):
    "One `train` call on generated audio, with a freshly built model as a new process would have."
    set_seed(0)
    cfg = TrainConfig(total_steps=total, batch_size=2, warmup_steps=2, ckpt_every=ckpt_every,
                      out_dir=str(out), **{"log_every": 1, **kw})
    return train(model(), data(), cfg, resume=resume, progress=False)


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_reproduces_the_loss_trajectory(tmp_path, accum):
    straight = run(tmp_path / "a", 6, 3, grad_accum_steps=accum)
    first = run(tmp_path / "b", 3, 3, grad_accum_steps=accum)   # "crashes" after its checkpoint at step 3
    rest = run(tmp_path / "b", 6, 3, grad_accum_steps=accum)    # a fresh call resumes from step 3
    assert first.state.step == 3 and rest.state.step == 6 and [r["step"] for r in rest.history] == [4, 5, 6]
    want = [r["loss"] for r in straight.history]
    got = [r["loss"] for r in first.history + rest.history]
    assert len(want) == 6 and got == pytest.approx(want, rel=1e-6, abs=1e-7)
    csv = read_metrics(tmp_path / "b" / "metrics.csv")
    assert [r["step"] for r in csv] == list(range(1, 7))
    assert [r["loss"] for r in csv] == pytest.approx(want, rel=1e-6, abs=1e-7)
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v.float(), rest.model.state_dict()[k].float(), atol=1e-6), k


def test_resume_drops_metrics_written_after_the_checkpoint(tmp_path):
    run(tmp_path, 5, 3)                                # checkpoints at 3 and 5, metrics rows 1..5
    for p in checkpoint_dirs(tmp_path)[1:]: shutil.rmtree(p)   # lose the step-5 checkpoint
    res = run(tmp_path, 5, 3)
    assert [r["step"] for r in res.history] == [4, 5]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [1, 2, 3, 4, 5]


def test_metrics_row_after_a_resume_averages_every_step_since_the_last_row(tmp_path):
    "A row every 2 steps, a checkpoint at step 3 (killed before step 6's): the row at step 4 averages steps 3 and 4."
    straight = run(tmp_path / "a", 6, 3, log_every=2)
    run(tmp_path / "b", 6, 3, log_every=2)
    for p in checkpoint_dirs(tmp_path / "b")[1:]: shutil.rmtree(p)   # "killed" after the step-3 checkpoint
    run(tmp_path / "b", 6, 3, log_every=2)
    want, got = read_metrics(tmp_path / "a" / "metrics.csv"), read_metrics(tmp_path / "b" / "metrics.csv")
    assert [r["step"] for r in got] == [r["step"] for r in want] == [2, 4, 6]
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-6, abs=1e-7)
    losses = [r["loss"] for r in straight.history]
    assert want[1]["loss"] == pytest.approx((losses[2] + losses[3]) / 2, rel=1e-6)


@pytest.mark.parametrize("damaged", ["state.pt", "model.safetensors"])
def test_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, damaged):
    straight = run(tmp_path / "a", 6, 2)
    run(tmp_path / "b", 4, 2)                                   # checkpoints at steps 2 and 4
    f = tmp_path / "b" / "checkpoints" / "step_00000004" / damaged
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])      # a truncated write (disk full, power cut)
    with pytest.warns(UserWarning) as caught:
        rest = run(tmp_path / "b", 6, 2)
    said = [str(w.message) for w in caught if "damaged" in str(w.message)]
    assert len(said) == 1 and "step_00000004" in said[0] and "step_00000002" in said[0] and "\n" not in said[0], said
    assert [r["step"] for r in rest.history] == [3, 4, 5, 6]
    assert [r["loss"] for r in rest.history] == pytest.approx([r["loss"] for r in straight.history[2:]], rel=1e-6, abs=1e-7)
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v.float(), rest.model.state_dict()[k].float(), atol=1e-6), k


def test_a_damaged_checkpoint_is_set_aside_so_pruning_keeps_the_new_ones(tmp_path):
    "Resumed past a damaged step 4, a run saving at 3 and 5 keeps them: the damaged folder no longer counts as the newest."
    run(tmp_path, 4, 2)                                          # checkpoints at steps 2 and 4
    f = tmp_path / "checkpoints" / "step_00000004" / "state.pt"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.warns(UserWarning, match="damaged"):
        run(tmp_path, 5, 3, keep_last=1)                         # resumes from 2, saves at 3 and 5, keeps 1
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000005"]
    assert (tmp_path / "checkpoints" / "damaged_step_00000004" / "state.pt").exists()  # kept for a look, not deleted


def test_processes_resume_from_the_oldest_of_their_newest_intact_checkpoints(tmp_path):
    "Another rank found step 4 damaged (its RNG file) and chose step 2: this rank resumes from step 2 too, and says why."
    from jukebox_nb.training import DamagedCheckpoint, newest_intact_checkpoint
    run(tmp_path, 4, 2)                                          # checkpoints at steps 2 and 4
    ckpts = checkpoint_dirs(tmp_path)
    seen = "step_00000004: RuntimeError: truncated"
    with pytest.warns(UserWarning) as caught:
        path, (ck, _, rng) = newest_intact_checkpoint(ckpts, 0, lambda o: [o, (0, [seen])])  # rank 1 stays at step 2
    assert path == ckpts[0] and ck["step"] == 2 and rng is not None
    said = [str(w.message) for w in caught if "damaged" in str(w.message)]
    assert len(said) == 1 and f"{seen} on rank 1" in said[0] and "resuming from step_00000002" in said[0], said
    with pytest.raises(DamagedCheckpoint, match=r"no intact checkpoint .*step_00000002: .* on rank 1"):
        newest_intact_checkpoint(ckpts, 0, lambda o: [o, (-1, [seen, "step_00000002: EOFError: cut"])])


def test_every_checkpoint_damaged_is_one_clear_error(tmp_path):
    run(tmp_path, 2, 2)
    (tmp_path / "checkpoints" / "step_00000002" / "state.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(ValueError, match=r"no intact checkpoint in .*checkpoints.*step_00000002"):
        run(tmp_path, 4, 2)


def test_checkpoints_are_complete_atomic_and_pruned(tmp_path):
    res = run(tmp_path, 5, 1, keep_last=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_00000004", "step_00000005"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000004", "step_00000005"]
    ck = torch.load(res.checkpoint / "state.pt", weights_only=True)
    assert {"format_version", "step", "train_config", "optimizer", "scheduler"} <= set(ck)
    assert ck["step"] == 5 and TrainConfig.from_dict(ck["train_config"]) == res.state.cfg
    assert sorted(p.name for p in res.checkpoint.iterdir()) == ["config.json", "model.safetensors", "rng_rank0.pt", "state.pt"]
    model = load_pretrained(res.checkpoint, kind="vqvae")  # every checkpoint is also a model folder
    for k, v in res.model.state_dict().items(): assert torch.equal(v, model.state_dict()[k]), k
    assert model.meta["step"] == 5
    # a crash mid-write leaves only a hidden temporary directory (or one without state.pt): resume ignores both
    (tmp_path / "checkpoints" / ".step_00000006.tmp").mkdir()
    (tmp_path / "checkpoints" / "step_00000007").mkdir()
    assert checkpoint_dirs(tmp_path)[-1].name == "step_00000005"
    run(tmp_path, 6, 1, keep_last=2)  # the next save clears the crash leftovers
    assert not (tmp_path / "checkpoints" / ".step_00000006.tmp").exists()


def test_fresh_run_refuses_an_out_dir_with_checkpoints(tmp_path):
    run(tmp_path, 2, 2)
    with pytest.raises(FileExistsError, match="resume=True"): run(tmp_path, 4, 2, resume=False)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    run(tmp_path, 2, 2)
    with pytest.raises(ValueError, match="does not fit this model"):
        run(tmp_path, 4, 2, model=lambda: tiny_vqvae(l_bins=16))


@dataclass
class Out:
    loss: torch.Tensor
    metrics: dict


class Regress(nn.Module):
    "Stateless fake model: the mean squared error of a linear map of the audio."
    def __init__(self):
        super().__init__(); self.lin = nn.Linear(LENGTH, 1)
    def forward(self, x):
        y = self.lin(x[:, 0])
        return Out(((y - 1) ** 2).mean(), {"y": y.mean().detach()})


def test_gradient_accumulation_equals_the_bigger_batch(tmp_path):
    "2 micro-batches of 2 accumulate to the gradient of one batch of 4 (the same items, same order)."
    set_seed(0); m1 = Regress(); m2 = Regress(); m2.load_state_dict(m1.state_dict())
    w0 = m1.lin.weight.detach().clone()
    base = dict(total_steps=2, warmup_steps=1, ckpt_every=2, log_every=1, clip=0.0)
    a = train(m1, data(), TrainConfig(batch_size=4, out_dir=str(tmp_path / "a"), **base), progress=False)
    b = train(m2, data(), TrainConfig(batch_size=2, grad_accum_steps=2, out_dir=str(tmp_path / "b"), **base),
              progress=False)
    assert [r["loss"] for r in a.history] == pytest.approx([r["loss"] for r in b.history], rel=1e-5)
    for k, v in a.model.state_dict().items(): assert torch.allclose(v, b.model.state_dict()[k], atol=1e-6), k
    assert not torch.allclose(a.model.lin.weight, w0)  # it did train


def test_a_model_of_unregistered_kind_is_checkpointed_in_state_pt(tmp_path):
    "Models that `save_pretrained` does not know (here a test double) still checkpoint and resume exactly."
    def go(out, total):
        set_seed(0)
        cfg = TrainConfig(total_steps=total, batch_size=2, warmup_steps=1, ckpt_every=2, out_dir=str(tmp_path / out))
        return train(Regress(), data(), cfg, progress=False)
    straight, first, rest = go("a", 4), go("b", 2), go("b", 4)
    assert [r["loss"] for r in first.history + rest.history] == pytest.approx([r["loss"] for r in straight.history], rel=1e-6)
    assert not (straight.checkpoint / "model.safetensors").exists()
    assert torch.load(straight.checkpoint / "state.pt", weights_only=True)["model"].keys() == straight.model.state_dict().keys()


def test_bf16_on_cpu_only_when_asked_and_fp16_falls_back(tmp_path):
    res = run(tmp_path / "bf16", 2, 2, mixed_precision="bf16")
    assert res.state.accelerator.mixed_precision == "bf16"
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in res.history)
    with pytest.warns(UserWarning, match="'fp16' is not supported on cpu"):
        res = run(tmp_path / "fp16", 2, 2, mixed_precision="fp16")
    assert res.state.accelerator.mixed_precision == "no"


def test_two_processes_keep_codebooks_in_sync(tmp_path):
    "2 CPU processes (gloo) through `accelerate launch`: the synced codebooks agree, rank-local ones do not."
    accelerate_launch("ddp_codebook_check.py", "--out", tmp_path, "--steps", "3", timeout=240)
    synced = [torch.load(tmp_path / f"synced_rank{r}.pt") for r in (0, 1)]
    local = [torch.load(tmp_path / f"local_rank{r}.pt") for r in (0, 1)]
    buffers = synced[0]["buffers"]
    assert buffers and set(buffers) <= set(synced[0]["state"])
    for k in synced[0]["state"]:  # every parameter and every codebook buffer agrees across the ranks
        assert torch.equal(synced[0]["state"][k], synced[1]["state"][k]), k
    for k in set(local[0]["state"]) - set(buffers):  # DDP keeps the parameters equal even without the sync
        assert torch.equal(local[0]["state"][k], local[1]["state"][k]), k
    # without the reduction each rank's EMA statistics follow its own data ...
    assert any(not torch.equal(local[0]["state"][k], local[1]["state"][k]) for k in buffers)
    # ... and the reduced statistics are not simply rank 0's own
    assert any(not torch.equal(synced[0]["state"][k], local[0]["state"][k]) for k in buffers)
    assert (tmp_path / "synced" / "metrics.csv").exists() and checkpoint_dirs(tmp_path / "synced")



def test_two_processes_resume_from_the_same_checkpoint(tmp_path):
    "2 CPU processes: only rank 1's RNG file of the newest checkpoint is cut short; both resume from the older one."
    accelerate_launch("resume_ddp_check.py", "--out", tmp_path, timeout=240)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["resumed"] for r in ranks] == [[1], [1]] and [r["steps"] for r in ranks] == [[2, 3], [2, 3]]
    for k, v in ranks[0]["state"].items(): assert torch.equal(v, ranks[1]["state"][k]), k
    said = ranks[0]["damaged"]
    assert len(said) == 1 and "step_00000002" in said[0] and "on rank 1" in said[0] and "rank 0" not in said[0], said
    assert ranks[1]["damaged"] == []                             # one warning line, from rank 0
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "damaged_step_00000002" / "rng_rank1.pt").stat().st_size == 100   # set aside, not deleted
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step_00000001", "step_00000002", "step_00000003"]


def test_tensorboard_logs_metrics(tmp_path):
    "TensorBoard is optional for users (a dev requirement here): when it is installed the logged metrics also land in event files."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    res = run(tmp_path, 2, 2)
    assert res.state.accelerator.log_with
    events = sorted((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events[0])); acc.Reload()
    assert [s.step for s in acc.Scalars("loss")] == [1, 2]
    assert [s.value for s in acc.Scalars("loss")] == pytest.approx([r["loss"] for r in res.history], rel=1e-6)


def test_train_vqvae_on_a_corpus_resumes_and_loads(tmp_path):
    "The CLI recipe: a two-track corpus folder, 2 steps, then 3 (resumed), then the model back from disk."
    from jukebox_nb.audio import save_wav
    from jukebox_nb.data import Track, write_metadata
    from jukebox_nb.training import train_vqvae, vqvae_from_checkpoint
    corpus, tones = tmp_path / "corpus", ToneDataset(n=2, length=22050)
    for i in range(2): save_wav(corpus / f"t{i}.wav", tones[i]["audio"])
    write_metadata(corpus / "metadata.jsonl", [Track(f"t{i}.wav", f"artist{i}", ("test",), f"tone {i}", "CC0-1.0", "generated")
                                               for i in range(2)])
    kw = dict(preset="tiny", out_dir=tmp_path / "run", sample_length=2048, batch_size=2, ckpt_every=2, progress=False)
    first = train_vqvae(corpus, steps=2, **kw)
    assert [r["step"] for r in first.history] == [1, 2]
    again = train_vqvae(corpus, steps=3, **kw)
    assert [r["step"] for r in again.history] == [3] and again.model.cfg == first.model.cfg
    model = vqvae_from_checkpoint(tmp_path / "run")
    for k, v in again.model.state_dict().items(): assert torch.equal(v, model.state_dict()[k]), k
    with pytest.raises(ValueError, match="another VQ-VAE config"): train_vqvae(corpus, steps=4, **{**kw, "preset": "mini"})
    with pytest.raises(ValueError, match="multiple of the top hop"): train_vqvae(corpus, steps=4, **{**kw, "sample_length": 2000})
    one = dict(levels=1, downs_t=(4,), strides_t=(2,), multipliers=(1,), width=6)  # one level, hop 16, a wider net
    single = train_vqvae(corpus, steps=1, vqvae_overrides=one, **{**kw, "out_dir": tmp_path / "one"})
    assert single.model.cfg.levels == 1 and single.model.cfg.width == 6 and single.model.cfg.hop_lengths == (16,)
    assert single.model.cfg.bandwidth == first.model.cfg.bandwidth  # measured from the same crops
    assert vqvae_from_checkpoint(tmp_path / "one").cfg == single.model.cfg
    with pytest.raises(ValueError, match="another VQ-VAE config than preset 'tiny' with"):
        train_vqvae(corpus, steps=2, vqvae_overrides={**one, "width": 8}, **{**kw, "out_dir": tmp_path / "one"})
    with pytest.raises(ValueError, match="another VQ-VAE config"): train_vqvae(corpus, steps=4, vqvae_overrides=one, **kw)
    with pytest.raises(ValueError, match="cannot set bandwidth"):
        train_vqvae(corpus, steps=1, vqvae_overrides={"bandwidth": None}, **{**kw, "out_dir": tmp_path / "bw"})


def test_evaluate_vqvae_skips_silent_clips(tmp_path):
    "Clips of digital silence have no spectral convergence: they are left out of the mean and counted."
    import json
    import numpy as np
    import soundfile as sf
    from jukebox_nb.training import evaluate_vqvae
    sr, root = 44100, tmp_path / "corpus"
    (root / "audio").mkdir(parents=True)
    t = np.arange(4 * sr) / sr
    y = np.where(t < 0.5, 0.5 * np.sin(2 * np.pi * 330 * t), 0.0).astype(np.float32)  # 0.5 s of tone, 3.5 s of silence
    sf.write(root / "audio" / "a.wav", y, sr)
    (root / "metadata.jsonl").write_text(json.dumps(dict(path="audio/a.wav", artist="a", genres=["g"], title="t", licence="CC0-1.0", source="tests")) + "\n")
    torch.manual_seed(0)
    ev = evaluate_vqvae(VQVAE(VQVAEConfig.preset("tiny")), root, split="all", n_clips=8, seconds=0.25)
    for m in ev.values():
        assert m["silent_clips_skipped"] >= 1 and m["clips"] + m["silent_clips_skipped"] == 8
        assert m["silent_inputs"] == 0 and m["spectral_convergence_db"] > -100  # no silent clip scored as "perfect"
