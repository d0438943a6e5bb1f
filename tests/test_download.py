"""`download_model` against a local HTTP server on 127.0.0.1 that serves small files with Range support and can
drop the connection part-way through a file."""
import hashlib
import http.server
import os
import shutil
import threading
from collections import Counter

import pytest

from jukebox_nb import checkpoints as ck
from jukebox_nb.checkpoints import DownloadError, download_model


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}  # url path -> bytes
    drop_once: set = set()  # paths whose first GET is cut halfway
    lie_size: dict = {}  # path -> size announced by HEAD (a server that serves fewer bytes)
    redirect: dict = {}  # path -> Location
    wrong_range: set = set()  # paths whose 206 replies send the file from byte 0 (Content-Range says so), sized as asked
    gets: Counter = Counter()

    def log_message(self, *a): pass

    def _head(self, code, n, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(n)); self.send_header("Accept-Ranges", "bytes")
        for k, v in extra: self.send_header(k, v)
        self.end_headers()

    def do_HEAD(self):
        if self.path in self.redirect:
            self.send_response(302); self.send_header("Location", self.redirect[self.path]); self.end_headers(); return
        if self.path not in self.files: self.send_error(404); return
        self._head(200, self.lie_size.get(self.path, len(self.files[self.path])))

    def do_GET(self):
        self.gets[self.path] += 1
        if self.path not in self.files: self.send_error(404); return
        data, start = self.files[self.path], 0
        rng = self.headers.get("Range")
        if rng: start = int(rng.split("=")[1].split("-")[0])
        body = data[start:]
        if rng and self.path in self.wrong_range:  # a broken proxy: the right length, from the wrong offset
            body = data[: len(data) - start]
            self._head(206, len(body), [("Content-Range", f"bytes 0-{len(body) - 1}/{len(data)}")])
        elif rng: self._head(206, len(body), [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
        else: self._head(200, len(body))
        if self.path in self.drop_once:
            self.drop_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2]); self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch):
    files = {f"/{rel}": os.urandom(50_000 + 1000 * i) for i, rel in enumerate(sorted(set(
        r for rels in ck.RELEASES.values() for r in rels.values())))}
    # the table of the official files, for these small stand-ins: exact sizes and checksums are verified
    monkeypatch.setattr(ck, "RELEASE_FILES", {p[1:]: ck.ReleaseFile(min_bytes=len(b) // 2, size=len(b),
                                                                   sha256=hashlib.sha256(b).hexdigest()) for p, b in files.items()})
    _Handler.files, _Handler.drop_once, _Handler.lie_size, _Handler.redirect = files, set(), {}, {}
    _Handler.wrong_range = set()
    _Handler.gets = Counter()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Handler
    srv.shutdown(); srv.server_close()


def test_downloads_every_file_of_a_release(server, tmp_path):
    url, h = server
    paths = download_model("1b_lyrics", tmp_path, base_url=url, progress=False)
    assert [p.name for p in paths] == ["vqvae.pth.tar", "prior_level_0.pth.tar", "prior_level_1.pth.tar", "prior_level_2.pth.tar"]
    assert (tmp_path / "prior_level_2.pth.tar").read_bytes() == h.files["/1b_lyrics/prior_level_2.pth.tar"]
    assert (tmp_path / "vqvae.pth.tar").read_bytes() == h.files["/5b/vqvae.pth.tar"]
    assert not list(tmp_path.glob("*.part"))


def test_dropped_connection_resumes_with_range(server, tmp_path):
    url, h = server
    h.drop_once.add("/5b/prior_level_1.pth.tar")
    download_model("5b", tmp_path, base_url=url, progress=False, levels=(1,))
    assert (tmp_path / "prior_level_1.pth.tar").read_bytes() == h.files["/5b/prior_level_1.pth.tar"]
    assert h.gets["/5b/prior_level_1.pth.tar"] == 2  # one cut, one resumed request


def test_interrupted_run_resumes_from_the_part_file(server, tmp_path):
    url, h = server
    h.drop_once.add("/5b/vqvae.pth.tar")
    with pytest.raises(DownloadError, match="run the download again to resume"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=(), retries=0)
    part = tmp_path / "vqvae.pth.tar.part"
    assert 0 < part.stat().st_size < len(h.files["/5b/vqvae.pth.tar"]) and not (tmp_path / "vqvae.pth.tar").exists()
    download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    assert (tmp_path / "vqvae.pth.tar").read_bytes() == h.files["/5b/vqvae.pth.tar"] and not part.exists()


def test_good_file_is_kept_and_another_is_refused(server, tmp_path):
    url, h = server
    download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    assert h.gets["/5b/vqvae.pth.tar"] == 1  # the complete file was not fetched again
    (tmp_path / "vqvae.pth.tar").write_bytes(b"something else")
    with pytest.raises(DownloadError, match="exists with 14 bytes but the server has .*overwrite=True"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    download_model("5b", tmp_path, base_url=url, progress=False, levels=(), overwrite=True)
    assert (tmp_path / "vqvae.pth.tar").read_bytes() == h.files["/5b/vqvae.pth.tar"]


def test_size_is_verified(server, tmp_path, monkeypatch):
    url, h = server
    monkeypatch.delitem(ck.RELEASE_FILES, "5b/vqvae.pth.tar")  # no table entry: the served bytes vs the announced size
    h.lie_size["/5b/vqvae.pth.tar"] = len(h.files["/5b/vqvae.pth.tar"]) + 10
    with pytest.raises(DownloadError, match="closed the stream|connection lost|announced"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=(), retries=1)
    assert not (tmp_path / "vqvae.pth.tar").exists()


def test_disk_space_is_checked_before_starting(server, tmp_path, monkeypatch):
    url, h = server
    monkeypatch.setattr(ck.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DownloadError, match=r"GiB still to download but only 0.00 GiB free"):
        download_model("1b_lyrics", tmp_path, base_url=url, progress=False)
    assert sum(h.gets.values()) == 0 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("base", ["http://example.com/jukebox/", "https://evil.example.net/models/",
                                  "http://openaipublic.azureedge.net/jukebox/models/", "ftp://127.0.0.1/"])
def test_only_known_hosts(base, tmp_path):
    with pytest.raises(DownloadError, match="refusing"):
        download_model("5b", tmp_path, base_url=base, progress=False)


def test_redirect_to_another_host_is_refused(server, tmp_path):
    url, h = server
    h.redirect["/5b/vqvae.pth.tar"] = "https://evil.example.net/vqvae.pth.tar"
    with pytest.raises(DownloadError, match="refusing https://evil.example.net"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=())


def test_unknown_model(tmp_path):
    with pytest.raises(DownloadError, match="unknown model '7b'"):
        download_model("7b", tmp_path)


def test_release_urls_are_https_on_the_release_host():
    for rels in ck.RELEASES.values():
        for rel in rels.values(): ck._check_url(ck.RELEASE_URL + rel)


def test_cli_download_uses_the_same_code(server, tmp_path, capsys):
    from jukebox_nb.cli import main
    url, _ = server
    assert main(["download", "1b_lyrics", "--to", str(tmp_path), "--levels", "2", "--base-url", url]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prior_level_2.pth.tar", "vqvae.pth.tar"]
    assert main(["download", "1b_lyrics", "--to", str(tmp_path / "x"), "--base-url", "http://example.com/"]) == 2
    assert "example.com" in capsys.readouterr().err


def test_206_from_the_wrong_offset_is_never_appended(server, tmp_path):
    "A resumed request answered 206 with a Content-Range that does not start where we asked: start over from 0."
    url, h = server
    h.drop_once.add("/5b/vqvae.pth.tar"); h.wrong_range.add("/5b/vqvae.pth.tar")
    download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    assert (tmp_path / "vqvae.pth.tar").read_bytes() == h.files["/5b/vqvae.pth.tar"]
    assert h.gets["/5b/vqvae.pth.tar"] == 3  # cut; a 206 from byte 0, refused; a whole new request


def test_checksum_and_official_size_are_verified(server, tmp_path, monkeypatch):
    url, h = server
    rel = "5b/vqvae.pth.tar"
    monkeypatch.setitem(ck.RELEASE_FILES, rel, ck.ReleaseFile(1, len(h.files["/" + rel]), "0" * 64))
    with pytest.raises(DownloadError, match=r"SHA-256 .* differs from the official file's .*run the download again"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    assert not (tmp_path / "vqvae.pth.tar").exists() and not list(tmp_path.glob("*.part"))  # a bad file is not kept
    monkeypatch.setitem(ck.RELEASE_FILES, rel, ck.ReleaseFile(1, len(h.files["/" + rel]) + 1))
    with pytest.raises(DownloadError, match=r"announces .* bytes, but the official file has .*bytes"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    monkeypatch.setitem(ck.RELEASE_FILES, rel, ck.ReleaseFile(10**9))
    with pytest.raises(DownloadError, match=r"too small to hold the model"):
        download_model("5b", tmp_path, base_url=url, progress=False, levels=())
    assert sum(h.gets.values()) == 1  # sizes are checked before a byte is fetched


def test_release_table_covers_every_official_file_and_holds_the_weights():
    import json
    from pathlib import Path
    assert set(ck.RELEASE_FILES) == {r for rels in ck.RELEASES.values() for r in rels.values()}
    # a file cannot be smaller than its unique tensors at 2 bytes each (fp16); counts from the release manifests
    elements = json.loads((Path(__file__).parent / "fixtures" / "release_tensor_elements.json").read_text())
    for rel, f in ck.RELEASE_FILES.items():
        assert f.min_bytes == 2 * elements[rel], rel


@pytest.mark.parametrize("case", ["refused", "404", "to is a file"])
def test_cli_download_failures_are_one_line(server, tmp_path, capsys, case):
    import socket
    from jukebox_nb.cli import main
    url, h = server
    to = tmp_path / "w"
    if case == "refused":
        with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]  # nothing listens there
        url = f"http://127.0.0.1:{port}"
    elif case == "404": h.files.pop("/5b/vqvae.pth.tar")
    else: to.write_text("not a folder")
    assert main(["download", "1b_lyrics", "--to", str(to), "--base-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    want = {"refused": (f"{url}/5b/vqvae.pth.tar", "cannot connect"), "404": ("/5b/vqvae.pth.tar", "404"),
            "to is a file": (str(to), "not a folder")}[case]
    assert all(w in err for w in want), err
