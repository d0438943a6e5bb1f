"""The score corpus (`corpus.build_score_corpus`, issue 15): real compositions from music21's corpus rendered by
fluidsynth, labelled by collection, reproducible from a seed, every piece's source and licence recorded."""
import numpy as np
import pytest
import soundfile as sf

from jukebox_nb import corpus as C
from jukebox_nb.cli import main as cli_main
from jukebox_nb.data import MusicDataset, read_metadata, split_tracks
from system_tools import require_fluidsynth, require_music21


@pytest.fixture
def score_tools():
    "music21, fluidsynth and a soundfont: a missing one fails the test (scripts/test.sh installs them), never skips it."
    require_music21(); require_fluidsynth(C.SOUNDFONTS)


needs_tools = pytest.mark.usefixtures("score_tools")
SR = 16000
TUNES = ["ryansMammoth/HopJig.abc", "ryansMammoth/VintonsHornpipe.abc"]


@needs_tools
def test_collections_exist_in_music21():
    "Every collection names files music21 really ships (the quartet folders hold quartets, not k545's piano sonata)."
    for name in C.DEFAULT_SCORE_COLLECTIONS:
        works = C.collection_works(C.SCORE_COLLECTIONS[name])
        assert len(works) >= 5, name
    assert not any("k545" in w for w in C.collection_works(C.SCORE_COLLECTIONS["mozart"]))
    assert len(C.collection_works(C.SCORE_COLLECTIONS["ryansMammoth"])) > 1000


@needs_tools
def test_score_events_of_a_chorale():
    notes, title = C.score_events("bach/bwv66.6.mxl")
    assert {k for *_, k in notes} == {0, 1, 2, 3}  # soprano, alto, tenor, bass
    assert all(0 <= s < e and 0 <= p < 128 for s, e, p, _ in notes)
    with pytest.raises(C.CorpusError, match="cannot read"): C.score_events("bach/no-such-work.mxl")


@needs_tools
def test_score_events_play_repeats():
    "A strathspey written as 96 quarters with repeat marks is played as 128 (the repeated strain twice)."
    notes, _ = C.score_events("ryansMammoth/42dHighlandRegimentStrathspey.abc")
    assert max(e for _, e, _, _ in notes) - min(s for s, _, _, _ in notes) > 120


@needs_tools
def test_tiny_real_build_is_reproducible(tmp_path):
    "Two fiddle tunes, cut at 6 s: audible, labelled, sourced, and the same bytes from the same seed."
    kw = dict(collections=["ryansMammoth"], works={"ryansMammoth": TUNES}, max_seconds=6.0, min_seconds=2.0, sr=SR, seed=3)
    rep = C.build_score_corpus(tmp_path / "a", n_per_collection=2, **kw)
    assert (rep.tracks, rep.added, rep.skipped) == (2, 2, [])
    tracks = read_metadata(rep.metadata)
    for t in tracks:
        x, sr = sf.read(tmp_path / "a" / t.path)
        assert sr == SR and abs(len(x) / sr - 7.0) < 0.01  # cut at 6 s, plus the 1 s tail
        assert 0.05 < np.sqrt(np.mean(x ** 2)) < 0.2 and np.abs(x).max() <= 0.9 + 1e-4  # loudness-normalised
        assert (t.artist, t.genres) == ("Ryan's Mammoth Collection", ("folk", "fiddle"))
        assert "public domain" in t.licence and "ryansMammoth/" in t.source and "fluidsynth" in t.source
    assert {p.name for p in (tmp_path / "a" / "licences").iterdir()} >= {"music21-corpus.txt"}
    again = C.build_score_corpus(tmp_path / "b", n_per_collection=2, **kw)
    for t, u in zip(tracks, read_metadata(again.metadata)):
        assert t == u and (tmp_path / "a" / t.path).read_bytes() == (tmp_path / "b" / u.path).read_bytes()
    ds = MusicDataset(tmp_path / "a", SR, split="all", sr=SR)
    assert ds.artists == ["Ryan's Mammoth Collection"] and len(ds.track_ids) == 2
    assert len(split_tracks([t.path for t in tracks], 0.5, 0)["valid"]) == 1  # whole pieces are held out


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown collection"): C.build_score_corpus(tmp_path, collections=["palestrina"], render=lambda m, r: None)
    with pytest.raises(ValueError, match="n_per_collection"): C.build_score_corpus(tmp_path, 0, render=lambda m, r: None)
    with pytest.raises(ValueError, match="raise max_seconds"): C.build_score_corpus(tmp_path, max_seconds=5, render=lambda m, r: None)


def test_cli_data_scores_rejects_two_sources(tmp_path, capsys):
    assert cli_main(["data", "--out", str(tmp_path), "--scores", "1", "--packages", "singularity-music"]) != 0
    assert "give one of --packages, --sung (--sung-chorales) or --scores" in capsys.readouterr().err


@needs_tools
def test_cli_data_scores(tmp_path, capsys):
    rc = cli_main(["data", "--out", str(tmp_path / "c"), "--scores", "1", "--collections", "ryansMammoth", "--max-seconds", "9"])
    assert rc == 0
    t, = read_metadata(tmp_path / "c" / "metadata.jsonl")
    assert t.path.startswith("audio/scores/ryansMammoth/") and "cut at 9 s" in t.source
