"""Loading the released weights (official `.pth.tar` and the Hugging Face hub layout), our own format, and errors.

Fixtures:
* `oracle_*` (see test_prior_parity.py / test_vqvae_parity.py): state dicts and outputs of the official code for
  small models with the releases' structure and key names;
* `ckpt_hf_key_names.json.gz`: for every key of every released manifest, the name Hugging Face's converter gives it
  (transformers 4.47.1 `convert_jukebox.fix_jukebox_keys` + its w/b and `.blocks.` renames), each checked to exist
  with the same shape in `JukeboxModel` (transformers 4.57.6) built on the meta device with the release configs
  (regenerate with `ckpt_make_hf_key_names.py`, whose docstring gives the steps);
* `ckpt_v1_tiny_vqvae/` + `ckpt_v1_tiny_vqvae_io.pt`: a folder written by format version 1, with an input and its codes.
"""
import gzip
import inspect
import json
from pathlib import Path

import pytest
import torch
from oracle_codes import assert_codes_match_oracle

from jukebox_nb import checkpoints as ck
from jukebox_nb.checkpoints import (CheckpointError, KEY_TABLE, hub_to_official, load_model, load_openai_part,
                                    load_pretrained, official_to_hub, save_openai, save_pretrained)
from jukebox_nb.conditioning import LyricTokenizer
from jukebox_nb.prior import Prior, PriorConfig
from jukebox_nb.vqvae import VQVAE, VQVAEConfig, measure_bandwidth

FIX = Path(__file__).parent / "fixtures"
_SMALL = dict(n_ctx=256, bins=128, width=64, blocks=16)
ORACLE_PRIORS = {  # same overrides as test_prior_parity.ORACLE_CONFIGS
    "top_sep": PriorConfig.preset("5b_lyrics", **_SMALL, depth=20, heads=2, n_tokens=32, prime_width=32, prime_depth=3,
                                  prime_heads=1, prime_blocks=4),
    "top_single": PriorConfig.preset("1b_lyrics", **_SMALL, depth=16, heads=2, n_tokens=32),
    "up1": PriorConfig.preset("upsampler_level_1", **_SMALL, depth=6, cond_width=32, cond_depth=4),
    "up0": PriorConfig.preset("upsampler_level_0", **_SMALL, depth=6, cond_width=32, cond_depth=4),
}
MANIFEST_PART = {"5b_prior_level_2": 2, "5b_lyrics_prior_level_2": 2, "1b_lyrics_prior_level_2": 2,
                 "prior_level_1": 1, "prior_level_0": 0, "vqvae": "vqvae"}


def manifests() -> dict:
    m = json.loads((FIX / "oracle_prior_manifests.json").read_text())
    m["vqvae"] = json.loads((FIX / "oracle_vqvae_release_manifest.json").read_text())
    return m


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)  # the VQ-VAE oracle codes are exact on one thread
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def vq_oracle():
    meta = json.loads((FIX / "oracle_vqvae.json").read_text())
    return (VQVAEConfig.from_openai(meta["hparams"], bandwidth=meta["bandwidth"]),
            torch.load(FIX / "oracle_vqvae_state_dict.pth", weights_only=True),
            torch.load(FIX / "oracle_vqvae_tensors.pt", weights_only=True))


@pytest.fixture(scope="module")
def prior_tensors():
    return torch.load(FIX / "oracle_prior_tensors.pth", weights_only=True)


def oracle_sd(name: str) -> dict:
    return torch.load(FIX / f"oracle_prior_{name}_state_dict.pth", weights_only=True)


def configs(vq_cfg, top: str) -> dict:
    return {"vqvae": vq_cfg, 2: ORACLE_PRIORS[top], 1: ORACLE_PRIORS["up1"], 0: ORACLE_PRIORS["up0"]}


def write_official(folder: Path, vq_sd: dict, top: str, nested: bool = False, model: str = "1b_lyrics") -> Path:
    "An official-format release folder assembled from the oracle state dicts."
    files = {"vqvae": vq_sd, 2: oracle_sd(top), 1: oracle_sd("up1"), 0: oracle_sd("up0")}
    for part, sd in files.items():
        rel = ck.RELEASES[model][part]
        path = folder / (rel if nested else Path(rel).name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": sd, "step": 0}, path)
    return folder


def check_against_oracle(jb, vq_tensors, prior_tensors, top: str):
    "The loaded VQ-VAE and priors reproduce the official code's outputs."
    x = vq_tensors["vqvae/x"].permute(0, 2, 1)
    # the official 1-d kernels give the oracle's codes up to float32 near-ties (a faster inference path may flip more)
    exact = {"exact": True} if "exact" in inspect.signature(VQVAE.encode).parameters else {}
    codes = jb.vqvae.encode(x, **exact)
    assert_codes_match_oracle(jb.vqvae, x, codes, vq_tensors)
    torch.testing.assert_close(jb.vqvae.decode(vq_tensors["vqvae/z0"], 0),
                               vq_tensors["vqvae/x_hat_from_level0"].permute(0, 2, 1), rtol=1e-5, atol=1e-5)
    for level, name in ((2, top), (1, "up1"), (0, "up0")):
        t = lambda k: prior_tensors.get(f"{name}/{k}")
        with torch.no_grad(): out = jb.prior(level)(t("z"), t("y"), t("z_cond0"))
        torch.testing.assert_close(out.logits, t("preds"), atol=1e-4, rtol=0)


# ---- the key table ------------------------------------------------------------------------------------------------
def test_key_table_covers_every_manifest_key():
    "Every key of every released manifest maps to the name HF's converter gave it, and back."
    hf = json.loads(gzip.open(FIX / "ckpt_hf_key_names.json.gz").read())
    for name, keys in manifests().items():
        part = MANIFEST_PART[name]
        assert set(hf[name]) == set(keys), name
        for k in keys:
            assert official_to_hub(k, part) == hf[name][k], k
            assert hub_to_official(hf[name][k], list(keys)) == (part, k)


def test_our_models_take_every_manifest_key_unrenamed():
    "The official state dicts need no renaming: our meta-built models have exactly the manifest's keys and shapes."
    m = manifests()
    for name, part in MANIFEST_PART.items():
        if part == "vqvae": cfg = VQVAEConfig.preset("released")
        else: cfg = PriorConfig.preset(ck.PRIOR_PRESET.get(part, name.replace("_prior_level_2", "")))
        with torch.device("meta"): model = (VQVAE if part == "vqvae" else Prior)(cfg)
        ours = {k: list(v.shape) for k, v in model.state_dict().items() if not ck._optional_key(k)}
        assert ours == m[name], name


def test_every_key_table_row_is_used():
    "No dead rows: each row of KEY_TABLE translates at least one manifest key."
    used = set()
    for name, keys in manifests().items():
        for k in keys:
            for i, (o, h) in enumerate(ck._ROWS):
                if o.read(k) is not None: used.add(i); break
    assert used == set(range(len(KEY_TABLE)))


# ---- "done when": official files through the public entry point reproduce the oracle ---------------------------------
@pytest.mark.parametrize("top,model", [("top_single", "1b_lyrics"), ("top_sep", "5b_lyrics")])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "url_layout"])
def test_official_files_reproduce_oracle(tmp_path, one_thread, vq_oracle, prior_tensors, top, model, nested):
    vq_cfg, vq_sd, vq_t = vq_oracle
    write_official(tmp_path, vq_sd, top, nested, model)
    jb = load_model(model, tmp_path, configs=configs(vq_cfg, top), offload=True)
    assert jb.name == model and sorted(jb.priors) == [0, 1, 2]
    check_against_oracle(jb, vq_t, prior_tensors, top)
    # the checkpoint's tensors were adopted, not copied
    assert jb.priors[2].prior.x_emb.weight.dtype == torch.float32


def test_fp16_parameters_are_cast(tmp_path, prior_tensors):
    "The 5B priors store Conv1D weights in fp16: they load in the requested dtype."
    sd = {k: (v.half() if k.endswith(".w") else v) for k, v in oracle_sd("top_sep").items()}
    torch.save({"model": sd, "step": 0}, tmp_path / "prior_level_2.pth.tar")
    p = load_openai_part(tmp_path / "prior_level_2.pth.tar", 2, ORACLE_PRIORS["top_sep"], "5b_lyrics")
    assert {t.dtype for t in p.parameters()} == {torch.float32}
    with torch.no_grad(): out = p(prior_tensors["top_sep/z"], prior_tensors["top_sep/y"])
    torch.testing.assert_close(out.logits, prior_tensors["top_sep/preds"], atol=5e-3, rtol=0)  # fp16 rounding of w
    pb = load_openai_part(tmp_path / "prior_level_2.pth.tar", 2, ORACLE_PRIORS["top_sep"], "5b_lyrics", dtype=torch.bfloat16)
    assert {t.dtype for t in pb.parameters()} == {torch.bfloat16}


# ---- the Hugging Face hub layout ----------------------------------------------------------------------------------
def write_hub(folder: Path, vq_sd: dict, top: str) -> Path:
    "A fake hub folder: HF's renamed keys (checked against HF's converter above), 2 shards + index + json files."
    named = {}
    for part, sd in (("vqvae", vq_sd), (2, oracle_sd(top)), (1, oracle_sd("up1")), (0, oracle_sd("up0"))):
        named.update({official_to_hub(k, part): v for k, v in sd.items()})
    keys = sorted(named)
    shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2], "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2:]}
    for fname, ks in shards.items(): torch.save({k: named[k] for k in ks}, folder / fname)
    (folder / ck.HUB_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}))
    (folder / "config.json").write_text(json.dumps({"architectures": ["JukeboxModel"], "model_type": "jukebox"}))
    (folder / "artists.json").write_text(json.dumps({"unknown": 0, "alan jackson": 3, "unknown.v2": 0, "alan_jackson.v2": 7}))
    (folder / "genres.json").write_text(json.dumps({"unknown": 0, "country": 2, "unknown.v2": 0, "country.v2": 11, "rock.v2": 8}))
    (folder / "lyrics.json").write_text(json.dumps({**LyricTokenizer(v3=True).vocab, "<unk>": 0}))
    return folder


@pytest.mark.parametrize("top,model", [("top_single", "1b_lyrics"), ("top_sep", "5b_lyrics")])
def test_hub_layout_reproduces_oracle(tmp_path, one_thread, vq_oracle, prior_tensors, top, model):
    vq_cfg, vq_sd, vq_t = vq_oracle
    write_hub(tmp_path, vq_sd, top)
    jb = load_model(model, tmp_path, configs=configs(vq_cfg, top))
    check_against_oracle(jb, vq_t, prior_tensors, top)
    if model != "1b_lyrics": return
    m = jb.metadata("Alan Jackson", "Country", total_length=44100 * 60)  # top level: v3 names
    assert (m.artist, m.genres) == (3, (2,))
    m1 = jb.vocab.metadata("Alan Jackson", "Country Rock", total_length=44100 * 60)  # upsamplers: v2 bag of words
    assert (m1.artist, m1.genres) == (7, (11, 8))
    per = jb.request_metadata("Alan Jackson", "Country", total_length=44100 * 60, lyrics="Hi")  # each level its version
    assert sorted(per) == [0, 1, 2] and (per[2].artist, per[2].genres) == (3, (2,)) and per[2].lyrics == "Hi"
    assert all((per[l].artist, per[l].genres) == (7, (11,)) for l in (0, 1))
    assert list(jb.request_metadata("Alan Jackson", "Country", 1, levels=(1,))) == [1]


def test_hub_errors_name_the_problem(tmp_path, vq_oracle):
    vq_cfg, vq_sd, _ = vq_oracle
    write_hub(tmp_path, vq_sd, "top_single")
    cfgs = configs(vq_cfg, "top_single")
    with pytest.raises(CheckpointError, match="cannot tell which release this is; pass model="):
        ck.load_hub(tmp_path, configs=cfgs)  # small oracle shapes match no release
    (tmp_path / "pytorch_model-00002-of-00002.bin").rename(tmp_path / "elsewhere.bin")
    with pytest.raises(CheckpointError, match="pytorch_model-00002-of-00002.bin named in .* missing"):
        load_model("1b_lyrics", tmp_path, configs=cfgs)
    (tmp_path / "elsewhere.bin").write_bytes(b"\x80\x02garbage")
    (tmp_path / "elsewhere.bin").rename(tmp_path / "pytorch_model-00002-of-00002.bin")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model("1b_lyrics", tmp_path, configs=cfgs)


# ---- errors that help ---------------------------------------------------------------------------------------------
@pytest.fixture
def release(tmp_path, vq_oracle):
    vq_cfg, vq_sd, _ = vq_oracle
    return write_official(tmp_path, vq_sd, "top_single"), configs(vq_cfg, "top_single")


def test_truncated_file(release):
    folder, cfgs = release
    data = (folder / "prior_level_1.pth.tar").read_bytes()
    (folder / "prior_level_1.pth.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"prior_level_1.pth.tar .*truncated or corrupt, download it again"):
        load_model("1b_lyrics", folder, configs=cfgs)
    (folder / "prior_level_1.pth.tar").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model("1b_lyrics", folder, configs=cfgs)


def test_missing_file_says_how_to_get_it(release):
    folder, cfgs = release
    (folder / "prior_level_0.pth.tar").unlink()
    with pytest.raises(CheckpointError, match="prior_level_0.pth.tar is missing.*download_model"):
        load_model("1b_lyrics", folder, configs=cfgs)
    load_model("1b_lyrics", folder, levels=(1, 2), configs=cfgs)  # not needed when level 0 is not asked for


class _NotATensor:
    def __reduce__(self): return (print, ("code ran",))


def test_file_needing_code_is_refused(release):
    folder, cfgs = release
    torch.save({"model": oracle_sd("up1"), "step": 0, "extra": _NotATensor()}, folder / "prior_level_1.pth.tar")
    with pytest.raises(CheckpointError, match=r"refused: the file contains code"):
        load_model("1b_lyrics", folder, configs=cfgs)


_RAN = []
def _set_flag(*args):  # the payload of a "malicious" pickle: harmless, but we can see whether it ran
    _RAN.append(args); return {}


class _CallsFunction:
    def __reduce__(self): return (_set_flag, ("ran",))


class _CallsOsSystem:  # torch 2.13 words this "Trying to load unsupported GLOBAL posix.system ... is blocked"
    def __init__(self, marker): self.marker = marker
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["function", "os.system"])
@pytest.mark.parametrize("writer", ["torch.save", "pickle protocol 2"])
def test_pickle_that_runs_code_is_refused_as_code_never_as_corrupt(tmp_path, payload, writer):
    "Under the installed torch's own wording: says 'contains code' and 'refused', no weights_only=False advice, nothing ran."
    import pickle
    marker = tmp_path / "payload_ran"
    evil = _CallsFunction() if payload == "function" else _CallsOsSystem(marker)
    path = tmp_path / "prior_level_1.pth.tar"
    if writer == "torch.save": torch.save({"model": {"a": torch.ones(2)}, "x": evil}, path)
    else: path.write_bytes(pickle.dumps({"model": {"a": torch.ones(2)}, "x": evil}, protocol=2))
    _RAN.clear()
    with pytest.raises(CheckpointError) as e:
        ck.read_pickle(path)
    msg = str(e.value)
    assert "contains code" in msg and "refused" in msg, msg
    assert "corrupt" not in msg and "download it again" not in msg, msg
    assert "weights_only" not in msg.replace("weights_only=True", ""), msg  # never the advice to turn the check off
    assert "\n" not in msg, msg  # one line
    assert _RAN == [] and not marker.exists()  # the payload never ran


def test_file_of_another_part_or_model(release):
    folder, cfgs = release
    (folder / "prior_level_2.pth.tar").write_bytes((folder / "vqvae.pth.tar").read_bytes())
    with pytest.raises(CheckpointError, match="this is a vqvae checkpoint, but the 1b_lyrics prior of level 2"):
        load_model("1b_lyrics", folder, configs=cfgs)
    torch.save({"model": oracle_sd("up0"), "hps": {"level": 0}}, folder / "prior_level_1.pth.tar")
    with pytest.raises(CheckpointError, match="says it is the level 0 prior, but level 1"):
        load_openai_part(folder / "prior_level_1.pth.tar", 1, cfgs[1], "1b_lyrics")
    # a real-size top prior of another release is named by its shapes (meta tensors: no memory)
    with torch.device("meta"): sd5 = Prior(PriorConfig.preset("5b")).state_dict()
    assert ck.identify(sd5) == "5b"
    torch.save({"model": sd5}, folder / "prior_level_2.pth.tar")
    with pytest.raises(CheckpointError, match="this is a 5b checkpoint, but the 1b_lyrics prior of level 2"):
        load_openai_part(folder / "prior_level_2.pth.tar", 2, PriorConfig.preset("1b_lyrics"), "1b_lyrics", device="meta")


def test_missing_unexpected_and_misshaped_keys_are_named(release):
    folder, cfgs = release
    sd = oracle_sd("top_single")
    w = sd.pop("prior.transformer._attn_mods.3.mlp.c_fc.w")
    sd["prior.transformer._attn_mods.3.mlp.c_fc.weight"] = w
    torch.save({"model": sd}, folder / "prior_level_2.pth.tar")
    with pytest.raises(CheckpointError, match=r"1 missing: prior.transformer._attn_mods.3.mlp.c_fc.w \(closest: "
                                              r"prior.transformer._attn_mods.3.mlp.c_fc.weight\).*1 unexpected"):
        load_model("1b_lyrics", folder, configs=cfgs)
    write_official(folder, torch.load(FIX / "oracle_vqvae_state_dict.pth", weights_only=True), "top_single")
    narrow = PriorConfig.preset("1b_lyrics", **{**_SMALL, "width": 32}, depth=16, heads=2, n_tokens=32)
    with pytest.raises(CheckpointError, match=r"with another shape: y_emb.bow_genre_emb.emb.weight: file \[604, 64\] vs model \[604, 32\]"):
        load_model("1b_lyrics", folder, configs={**cfgs, 2: narrow})


def test_untied_output_embedding_is_refused(release):
    folder, cfgs = release
    sd = oracle_sd("top_single")
    sd["prior.x_out.weight"] = sd["prior.x_out.weight"] + 1.0
    torch.save({"model": sd}, folder / "prior_level_2.pth.tar")
    with pytest.raises(CheckpointError, match="should be tied to prior.x_emb.weight"):
        load_model("1b_lyrics", folder, configs=cfgs)


def test_too_little_memory_is_said_before_loading(release, monkeypatch):
    folder, cfgs = release
    monkeypatch.setattr(ck, "available_bytes", lambda device="cpu": 1000)
    with pytest.raises(CheckpointError, match=r"needs about .* GiB on cpu, but only 0.0 GiB are free; ask for dtype=torch.float16"):
        load_model("1b_lyrics", folder, configs=cfgs)
    load_model("1b_lyrics", folder, configs=cfgs, check_memory=False)


def test_unknown_model_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model '2b'"): load_model("2b", tmp_path)
    with pytest.raises(CheckpointError, match="no such folder"): load_model("1b_lyrics", tmp_path / "nope")


# ---- round trips: official format <-> ours ------------------------------------------------------------------------
def test_1b_lyrics_size_round_trip_on_meta(tmp_path):
    "A full-size 1b_lyrics prior through the official writer and loader, and our format's key plan, on the meta device."
    cfg = PriorConfig.preset("1b_lyrics")
    with torch.device("meta"): p = Prior(cfg)
    save_openai(p, tmp_path / "prior_level_2.pth.tar")
    q = load_openai_part(tmp_path / "prior_level_2.pth.tar", 2, cfg, "1b_lyrics", device="meta")
    a, b = p.state_dict(), q.state_dict()
    assert {k: (v.shape, v.dtype) for k, v in a.items()} == {k: (v.shape, v.dtype) for k, v in b.items()}
    assert len(a) == 872 and sum(t.numel() for t in q.parameters()) == 942_643_200
    kept, tied = ck._dedupe(b)  # what save_pretrained would store
    assert tied == {"prior.x_out.weight": "prior.x_emb.weight"} and len(kept) == 871


def _round_trip(tmp_path, cfg):
    torch.manual_seed(0)
    p = Prior(cfg).eval()
    save_openai(p, tmp_path / "prior_level_2.pth.tar")
    q = load_openai_part(tmp_path / "prior_level_2.pth.tar", 2, cfg, "1b_lyrics")
    save_pretrained(q, tmp_path / "ours")
    r = load_pretrained(tmp_path / "ours", kind="prior")
    for k, v in p.state_dict().items():
        assert torch.equal(r.state_dict()[k], v), k
    assert r.state_dict()["prior.x_out.weight"].data_ptr() == r.prior.x_emb.weight.data_ptr()
    from jukebox_nb.conditioning import Metadata
    y = p.tokenize([Metadata(artist=3, genres=(5,), total_length=44100 * 60, lyrics="hello world")])
    z = torch.randint(0, cfg.bins, (1, 8))
    with torch.no_grad():
        l1 = p.extend(p.start(p.condition(y)), z)
        l2 = r.extend(r.start(r.condition(y)), z)
    assert torch.equal(l1, l2)


def test_1b_lyrics_structure_round_trip_at_width_64(tmp_path):
    "The 1b_lyrics structure (n_ctx 6144, 384 lyric tokens, v3 labels, attn_order 12) with random weights at width 64: official -> ours."
    _round_trip(tmp_path, PriorConfig.preset("1b_lyrics", width=64, depth=16))


@pytest.mark.slow
def test_1b_lyrics_full_size_round_trip(tmp_path):
    "The real size (3.8 GB fp32): needs ~12 GB RAM and ~8 GB disk."
    _round_trip(tmp_path, PriorConfig.preset("1b_lyrics"))


# ---- our own format: migration --------------------------------------------------------------------------------------
def test_version_1_folder_migrates(tmp_path):
    "A folder written by format version 1 loads (migrated to the current version) and gives the same codes."
    assert json.loads((FIX / "ckpt_v1_tiny_vqvae" / "config.json").read_text())["format_version"] == 1
    doc = ck.read_config(FIX / "ckpt_v1_tiny_vqvae")
    assert doc["format_version"] == ck.FORMAT_VERSION and doc["tied"] == {}
    vq = load_pretrained(FIX / "ckpt_v1_tiny_vqvae", kind="vqvae")
    io = torch.load(FIX / "ckpt_v1_tiny_vqvae_io.pt", weights_only=True)
    assert torch.equal(vq.encode(io["x"], 0), io["codes0"])
    assert "version 1" in vq.meta["note"]
    with torch.no_grad(): assert torch.isfinite(vq(io["x"]).loss)  # the loss's STFT windows (not in any file) were built
    save_pretrained(vq, tmp_path / "v2")  # and it is written back in the current version
    assert json.loads((tmp_path / "v2" / "config.json").read_text())["format_version"] == ck.FORMAT_VERSION


def test_version_2_folder_migrates(tmp_path):
    "A version-2 config.json (no storage dtype) reads as weights stored in the model's own dtype."
    p = Prior(PriorConfig.preset("tiny_single")).eval()
    save_pretrained(p, tmp_path / "v2")
    doc = json.loads((tmp_path / "v2" / "config.json").read_text())
    for k in ("storage_dtype", "dtype"): doc.pop(k)
    (tmp_path / "v2" / "config.json").write_text(json.dumps({**doc, "format_version": 2}))
    assert ck.read_config(tmp_path / "v2")["storage_dtype"] is None
    p2 = load_pretrained(tmp_path / "v2", kind="prior")
    assert all(torch.equal(p2.state_dict()[k], v) for k, v in p.state_dict().items())


# ---- our own format: storage dtype ----------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", [torch.float16, torch.bfloat16])
def test_half_storage_loads_back_as_float32(tmp_path, storage):
    "Weights stored in 16 bits come back in float32, rounded once (the VQ-VAE's EMA buffers too), in half the bytes."
    torch.manual_seed(0)
    x = (torch.randn(2, 1, 4096) * 0.3).clamp(-1, 1)
    vq = VQVAE(VQVAEConfig.from_dict({**VQVAEConfig.preset("tiny").to_dict(), "bandwidth": measure_bandwidth([x])}))
    vq.train(); vq(x); vq.eval()  # one step fills the EMA codebook statistics
    save_pretrained(vq, tmp_path / "full"); save_pretrained(vq, tmp_path / "half", storage_dtype=storage)
    from safetensors.torch import load_file
    stored = load_file(str(tmp_path / "half" / "model.safetensors"))
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {storage}
    float_bytes = lambda n: sum(v.nbytes for v in load_file(str(tmp_path / n / "model.safetensors")).values() if v.is_floating_point())
    assert float_bytes("half") * 2 == float_bytes("full")
    vq2 = load_pretrained(tmp_path / "half", kind="vqvae")
    for k, v in vq.state_dict().items():
        w = vq2.state_dict()[k]
        assert w.dtype == v.dtype, k
        assert torch.equal(w, v.to(storage).to(v.dtype) if v.is_floating_point() else v), k
    assert next(load_pretrained(tmp_path / "half", dtype=torch.float64).parameters()).dtype == torch.float64  # an explicit dtype wins


def test_storage_dtype_errors(tmp_path):
    p = Prior(PriorConfig.preset("tiny_single"))
    with pytest.raises(CheckpointError, match="use torch.float16, torch.bfloat16, torch.float32 or torch.int8"):
        save_pretrained(p, tmp_path / "a", storage_dtype=torch.int16)
    with torch.no_grad(): p.prior.x_emb.weight[1, 2] = -7e4
    with pytest.raises(CheckpointError, match=r"prior.x_emb.weight holds 7e\+04, more than torch.float16 can store"):
        save_pretrained(p, tmp_path / "b", storage_dtype=torch.float16)
    assert not (tmp_path / "b" / "config.json").exists()  # nothing half-written
    save_pretrained(p, tmp_path / "c", storage_dtype=torch.bfloat16)  # bfloat16 has float32's range
    assert load_pretrained(tmp_path / "c").prior.x_emb.weight[1, 2] == torch.tensor(-7e4).bfloat16().float()


def test_int8_storage_round_trip(tmp_path):
    """int8 storage: each big weight within half a row step of the original, small ones exact, the same dtype back (an
    explicit dtype wins), the VQ-VAE's codebook too, and the file about a quarter of the float32 one."""
    torch.manual_seed(0)
    x = (torch.randn(2, 1, 4096) * 0.3).clamp(-1, 1)
    vq = VQVAE(VQVAEConfig.from_dict({**VQVAEConfig.preset("tiny", width=16, l_bins=128).to_dict(), "bandwidth": measure_bandwidth([x])}))
    vq.train(); vq(x); vq.eval()  # the codebooks (128 x 8) and the widest convolutions get int8
    p = Prior(PriorConfig.preset("tiny_single", width=128)).eval()
    for name, m in (("vq", vq), ("prior", p)):
        save_pretrained(m, tmp_path / f"{name}32"); save_pretrained(m, tmp_path / f"{name}8", storage_dtype=torch.int8)
        from safetensors.torch import load_file
        stored = load_file(str(tmp_path / f"{name}8" / "model.safetensors"))
        big = [k for k, v in m.state_dict().items() if v.is_floating_point() and v.dim() >= 2 and v.numel() >= ck.INT8_MIN_NUMEL
               and k in stored]  # not the tied alias, which the file does not hold
        assert big and all(stored[k].dtype == torch.int8 and stored[k + ck.INT8_SCALE].shape == (len(stored[k]),) for k in big)
        m8 = load_pretrained(tmp_path / f"{name}8")
        for k, v in m.state_dict().items():
            w = m8.state_dict()[k]
            assert w.dtype == v.dtype and w.shape == v.shape, k
            k = ck.read_config(tmp_path / f"{name}8")["tied"].get(k, k)
            if k not in big: assert torch.equal(w, v), k; continue
            step = v.reshape(len(v), -1).abs().amax(1) / 127
            err = (w - v).reshape(len(v), -1).abs()
            assert (err <= step[:, None] / 2 * 1.001).all() and err.max() > 0, k  # rounded, by at most half a step
        assert set(m8.state_dict()) == set(m.state_dict())
    ratio = (tmp_path / "prior8" / "model.safetensors").stat().st_size / (tmp_path / "prior32" / "model.safetensors").stat().st_size
    assert 0.25 < ratio < 0.32, ratio
    assert next(load_pretrained(tmp_path / "prior8", dtype=torch.float64).parameters()).dtype == torch.float64
    tied = load_pretrained(tmp_path / "prior8")  # the tied output embedding is stored once and comes back one tensor
    assert tied.state_dict()["prior.x_out.weight"].data_ptr() == tied.prior.x_emb.weight.data_ptr()


def test_int8_storage_refuses_nan_and_writes_nothing(tmp_path):
    p = Prior(PriorConfig.preset("tiny_single"))
    with torch.no_grad(): p.prior.x_emb.weight[3, 1] = float("nan")
    with pytest.raises(CheckpointError, match=r"prior.x_emb.weight holds NaN or infinite values, which int8 cannot store"):
        save_pretrained(p, tmp_path / "nan", storage_dtype=torch.int8)
    assert not (tmp_path / "nan" / "model.safetensors").exists() and not (tmp_path / "nan" / "config.json").exists()


def test_version_3_folder_migrates(tmp_path):
    "A version-3 config.json (before int8 storage) reads unchanged, float16 storage included."
    p = Prior(PriorConfig.preset("tiny_single")).eval()
    save_pretrained(p, tmp_path / "v3", storage_dtype=torch.float16)
    doc = json.loads((tmp_path / "v3" / "config.json").read_text())
    (tmp_path / "v3" / "config.json").write_text(json.dumps({**doc, "format_version": 3}))
    assert ck.read_config(tmp_path / "v3")["format_version"] == ck.FORMAT_VERSION == 4
    p3 = load_pretrained(tmp_path / "v3", kind="prior")
    assert all(torch.equal(p3.state_dict()[k], v.half().float()) for k, v in p.state_dict().items())


def test_tied_weights_stay_tied_when_cast_on_load(tmp_path):
    "Casting on load (dtype=...) used to give the tied output embedding a copy of its own."
    p = Prior(PriorConfig.preset("tiny_single")).eval()
    save_pretrained(p, tmp_path / "p")
    p2 = load_pretrained(tmp_path / "p", dtype=torch.float64)
    assert p2.prior.x_emb.weight.dtype == torch.float64
    assert p2.state_dict()["prior.x_out.weight"].data_ptr() == p2.prior.x_emb.weight.data_ptr()


# ---- Accelerate placement -----------------------------------------------------------------------------------------
def test_accelerate_disk_offload_gives_same_outputs(tmp_path, prior_tensors):
    "device_map='auto' with a CPU budget smaller than the prior spills layers to disk; outputs are unchanged."
    ref = Prior.from_state_dict(ORACLE_PRIORS["up0"], oracle_sd("up0")).eval()
    p = Prior.from_state_dict(ORACLE_PRIORS["up0"], oracle_sd("up0")).eval()
    size = sum(t.numel() * 4 for t in p.parameters())
    placed = ck.place_with_accelerate(p, max_memory={"cpu": int(size * 0.9)}, offload_dir=tmp_path / "off")
    assert "disk" in set(placed.hf_device_map.values())
    t = lambda k: prior_tensors[f"up0/{k}"]
    with torch.no_grad():
        torch.testing.assert_close(placed(t("z"), t("y"), t("z_cond0")).logits, ref(t("z"), t("y"), t("z_cond0")).logits)


# ---- a loaded release drives the sampling engine ------------------------------------------------------------------
def test_loaded_release_samples_like_the_original_models(tmp_path):
    "Official files written from tiny models, loaded by load_model, sample exactly the tokens the originals sample."
    from jukebox_nb.conditioning import Metadata
    from jukebox_nb.sampling import SampleConfig, SampleRequest, sample
    orig = ck.Jukebox.tiny(seed=3, name="1b_lyrics")
    for part, m in [("vqvae", orig.vqvae), *orig.priors.items()]:
        save_openai(m, tmp_path / ("vqvae.pth.tar" if part == "vqvae" else f"prior_level_{part}.pth.tar"))
    cfgs = {"vqvae": orig.vqvae.cfg, **{l: p.cfg for l, p in orig.priors.items()}}
    jb = load_model("1b_lyrics", tmp_path, configs=cfgs)
    req = SampleRequest(metadata=(Metadata(artist=1, genres=(2,), total_length=44100 * 30),), seconds=0.2, seed=5)
    cfg = SampleConfig(device="cpu", decode=False)
    a, b = sample(orig, req, cfg), sample(jb, req, cfg)  # the loaded Jukebox goes to the engine as it is
    assert sorted(a.tokens) == [0, 1, 2] and b.model == "1b_lyrics"
    for l in a.tokens: assert torch.equal(a.tokens[l], b.tokens[l]), l
