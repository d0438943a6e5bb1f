"""Fixtures for browser tests: a throwaway JupyterLab server on 127.0.0.1 and a headless Debian Chromium page.

Recipe and flags: ../shared/reference/environment.md §2 (never `playwright install`: we drive the system
Chromium). Missing Chromium or Playwright is a test failure with instructions, not a skip: scripts/test.sh installs both.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--mute-audio"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


class Lab:
    "A running JupyterLab server: `root` is its notebook directory, `url(path)` opens a file."
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path: str = "", workspace: str = "test") -> str:
        "Open `path` in a workspace of its own, reset so that no earlier test's tabs come back."
        return f"http://127.0.0.1:{self.port}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@contextmanager
def start_lab(tmp_path: Path, root: Path | None = None, env: dict | None = None):
    "Run `jupyter lab` serving `root` (default: a new tmp_path/root) with isolated config/runtime/workspace/settings dirs."
    import importlib.util
    missing = [m for m in ("jupyterlab", "ipywidgets", "jupyterlab_widgets") if importlib.util.find_spec(m) is None]
    if missing: pytest.fail(f"browser tests need {', '.join(missing)} in this Python environment: `pip install {' '.join(missing)}`")
    home = tmp_path / "jupyter"
    if root is None: root = tmp_path / "root"; root.mkdir()
    dirs = {k: home / k.lower() for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR",
                                          "JUPYTERLAB_WORKSPACES_DIR", "JUPYTERLAB_SETTINGS_DIR")}
    for d in dirs.values(): d.mkdir(parents=True)
    news = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", **(env or {})}
    port, token, log = _free_port(), secrets.token_hex(16), tmp_path / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None: pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.monotonic() > deadline: pytest.fail(f"jupyter lab did not answer within 90 s:\n{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # only the process group this fixture started
            try: proc.wait(15)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait(5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    "Start `jupyter lab` in a temporary directory, once per module."
    with start_lab(tmp_path_factory.mktemp("lab")) as server: yield server


@pytest.fixture(scope="module")
def repo_lab(tmp_path_factory):
    "JupyterLab as scripts/studio.sh starts it: a root holding nbs/studio.ipynb (a byte copy) and configs/jupyter on JUPYTER_CONFIG_PATH."
    base = tmp_path_factory.mktemp("repo")
    repo = base / "repo"
    (repo / "nbs").mkdir(parents=True); (repo / "configs" / "jupyter").mkdir(parents=True)
    shutil.copy(ROOT / "nbs" / "studio.ipynb", repo / "nbs" / "studio.ipynb")
    shutil.copy(ROOT / "configs" / "jupyter" / "jupyter_server_config.py", repo / "configs" / "jupyter")
    env = {"JUPYTER_CONFIG_PATH": str(repo / "configs" / "jupyter"), "JUKEBOX_NB_STUDIO": "fake"}
    with start_lab(base, root=repo, env=env) as server: yield server


@pytest.fixture
def page():
    "A Playwright page in headless Debian Chromium; `page.errors` collects uncaught page errors."
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: browser tests need Debian's Chromium. Install it with "
                    "`apt-get install -y --no-install-recommends chromium` (`bash scripts/test.sh` does this as root); "
                    "do not use `playwright install`.")
    try: from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the `playwright` Python package is missing: `pip install playwright` (it is in dev_requirements); "
                    "no `playwright install` is needed, the tests drive /usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": 1000})
            pg.errors = []
            pg.on("pageerror", lambda e: pg.errors.append(str(e)))
            yield pg
        finally: browser.close()
