"""Property-based tests (hypothesis) over the CLI's arguments, audio files and config dicts: whatever the input,
the user gets an exit code and a message, never a traceback (issue 17).

The argument tests stub out every command, so they check parsing only and run many examples; the audio and
config tests run `reconstruct` for real on a tiny random VQ-VAE with few examples (CI has 2 cores)."""
import contextlib
import dataclasses
import io
import json
import math
import string
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import jukebox_nb.cli as cli
from jukebox_nb.cli import main

# derandomize: CI sees the same examples every run (a rare find would otherwise fail one run in many);
# explore more by hand with HYPOTHESIS_SEED unset and derandomize=False
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run_main(argv) -> tuple[int, str]:
    "`main(argv)` as the console script runs it: the exit code and what went to stderr."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: code = main([str(a) for a in argv])
        except SystemExit as e: code = e.code if isinstance(e.code, int) else (print(e.code, file=err) or 1)
    return code, err.getvalue()


def assert_clean_exit(code, err, allowed=(0, 1, 2)):
    "An exit code we chose and, on failure, a final line that says what went wrong; no traceback."
    assert "Traceback" not in err, err
    assert code in allowed, (code, err)  # 3 = an unexpected exception (a bug) caught by main
    if code: assert err.strip() and "error" in err.strip().splitlines()[-1], err


# --- arguments ------------------------------------------------------------------------------------------------------

def _flags(command: str) -> list[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
    return [s for a in sub._actions for s in a.option_strings if s.startswith("--") and s != "--help"]


COMMANDS = ["reconstruct", "demo", "data", "train-vqvae", "encode-codes", "train-prior", "download"]
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
                    st.sampled_from(["inf", "-inf", "nan", "NaN", "1e309", "0", "-0", "1_000", "0x10", "", " ", "1.5e3"]))


@st.composite
def argv_for(draw, tmp: Path):
    command = draw(st.sampled_from(COMMANDS + ["no-such-command"]))
    flags = _flags(command) if command in COMMANDS else ["--out"]
    words = st.one_of(NUMBERS.map(str), st.text(string.printable, max_size=12),
                      st.sampled_from([str(tmp / "a_file"), str(tmp / "a_file" / "below"), str(tmp / "new"), str(tmp), "-", "--"]))
    argv = [command]
    if command in ("train-vqvae", "encode-codes", "train-prior"): argv.append(str(tmp / "missing_corpus"))
    if command == "download": argv.append(draw(st.sampled_from(["5b", "1b_lyrics", "7b"])))
    for _ in range(draw(st.integers(0, 5))):
        argv.append(draw(st.sampled_from(flags)))
        if draw(st.booleans()): argv.append(draw(words))
    return argv


def _stub(args) -> int:
    "Stands in for every command: the parsed values must already be usable."
    for k, v in vars(args).items():
        if isinstance(v, float): assert math.isfinite(v), (k, v)
    for k in ("out",):
        v = getattr(args, k, None)
        if v is not None: assert not Path(v).exists() or Path(v).is_dir(), (k, v)
    if getattr(args, "seconds", None) is not None: assert args.seconds > 0
    return 0


@settings(max_examples=300, **SETTINGS)
@given(data=st.data())
def test_any_argument_list_gives_a_code_and_a_message(data, tmp_path_factory, monkeypatch):
    tmp = tmp_path_factory.getbasetemp() / "args"
    tmp.mkdir(exist_ok=True); (tmp / "a_file").write_text("x")
    for name in dir(cli):
        if name.startswith("cmd_"): monkeypatch.setattr(cli, name, _stub)
    code, err = run_main(data.draw(argv_for(tmp)))
    assert_clean_exit(code, err)
    if code == 2: assert err.strip().splitlines()[-1].startswith("jukebox-nb"), err


# --- audio files ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_vq(tmp_path_factory):
    from jukebox_nb.checkpoints import save_pretrained
    from jukebox_nb.vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vq") / "tiny"
    save_pretrained(VQVAE(VQVAEConfig.preset("tiny")).eval(), folder)
    return folder


@st.composite
def audio_file(draw, folder: Path) -> Path:
    "A file that may be anything from good audio to garbage."
    kind = draw(st.sampled_from(["good", "empty", "garbage", "truncated", "nan", "huge_values", "silence"]))
    ext = draw(st.sampled_from([".wav", ".flac", ".ogg"]))
    sr = draw(st.sampled_from([8000, 22050, 44100, 48000]))
    channels = draw(st.integers(1, 6))
    n = draw(st.sampled_from([1, 100, 2047, 3000, 9000]))
    path = folder / f"{kind}_{channels}ch_{n}{ext}"
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = (0.3 * rng.standard_normal((n, channels))).astype(np.float32)
    if kind == "empty": path.write_bytes(b""); return path
    if kind == "garbage": path.write_bytes(rng.bytes(draw(st.integers(1, 5000)))); return path
    if kind == "silence": x[:] = 0
    if kind == "nan": ext = ".wav"; path = path.with_suffix(".wav"); x[draw(st.integers(0, n - 1))] = np.nan
    if kind == "huge_values": ext = ".wav"; path = path.with_suffix(".wav"); x *= 1e30
    float_wav = ext == ".wav" and kind in ("nan", "huge_values")
    sf.write(path, x, sr, subtype="FLOAT" if float_wav else None)
    if kind == "truncated":
        data = path.read_bytes(); path.write_bytes(data[:draw(st.integers(1, max(1, len(data) - 1)))])
    return path


@settings(max_examples=25, **SETTINGS)
@given(data=st.data())
def test_reconstruct_any_audio_file(data, tiny_vq, tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    path = data.draw(audio_file(folder))
    out = folder / "out"
    code, err = run_main(["reconstruct", path, "--checkpoint", tiny_vq, "--out", out,
                          *data.draw(st.sampled_from([[], ["--seconds", "0.1"], ["--offset", "0.05"]]))])
    assert_clean_exit(code, err, allowed=(0, 2))
    if code == 0: assert sorted(p.name for p in out.iterdir()) == ["level_0.wav", "level_1.wav", "level_2.wav", "metrics.json",
                                                                   "original.wav", "spectrograms.png"]
    else: assert path.name in err.strip().splitlines()[-1] or "too short" in err, err
    assert not [p for p in folder.rglob(".*")], "temporary files left behind"


# --- config dicts ---------------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(), st.text(max_size=6)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                           max_leaves=6)


def _config_classes():
    from jukebox_nb.bottleneck import BottleneckConfig
    from jukebox_nb.prior import PriorConfig
    from jukebox_nb.sampling import SampleConfig
    from jukebox_nb.training import TrainConfig
    from jukebox_nb.vqvae import VQVAEConfig
    return {"vqvae": (VQVAEConfig, VQVAEConfig.preset("tiny").to_dict()), "prior": (PriorConfig, PriorConfig.preset("tiny").to_dict()),
            "train": (TrainConfig, TrainConfig().to_dict()), "sample": (SampleConfig, dataclasses.asdict(SampleConfig())),
            "bottleneck": (BottleneckConfig, dataclasses.asdict(BottleneckConfig()))}


@settings(max_examples=200, **SETTINGS)
@given(which=st.sampled_from(["vqvae", "prior", "train", "sample", "bottleneck"]), data=st.data())
def test_config_dicts_are_accepted_or_refused_with_a_value_error(which, data):
    cls, base = _config_classes()[which]
    d = dict(base)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.one_of(st.sampled_from(sorted(d)), st.text(min_size=1, max_size=8)))
        d[key] = data.draw(JSON_VALUES)
    make = getattr(cls, "from_dict", None) or (lambda kw: cls(**kw))
    try: make(d)
    except ValueError as e: assert str(e)  # includes ConfigTypeError: names the field and the type it needs
    except TypeError as e:  # only the dataclass's own "unexpected keyword" for classes without from_dict
        assert not hasattr(cls, "from_dict") and "unexpected keyword argument" in str(e), e


@settings(max_examples=12, **SETTINGS)
@given(data=st.data())
def test_reconstruct_with_a_damaged_config(data, tiny_vq, tmp_path_factory):
    "Wrong types and unknown keys in a checkpoint's config.json: one line naming the file, before any audio is read."
    import shutil
    folder = tmp_path_factory.mktemp("cfg") / "vq"
    shutil.copytree(tiny_vq, folder)
    doc = json.loads((folder / "config.json").read_text())
    cfg = doc["config"]
    key = data.draw(st.one_of(st.sampled_from(sorted(cfg)), st.text(string.ascii_lowercase, min_size=1, max_size=8)))
    value = data.draw(JSON_VALUES)
    assume(key not in cfg or type(value) is not type(cfg[key]))  # a damaged entry, not a bigger model
    cfg[key] = value
    (folder / "config.json").write_text(json.dumps(doc))
    code, err = run_main(["reconstruct", "--checkpoint", folder, "--out", folder.parent / "out", "--seconds", "0.1"])
    assert_clean_exit(code, err)
    if code: assert "config.json" in err and len(err.strip().splitlines()) == 1, err
