"""scripts/system_packages.sh (run first by scripts/test.sh): installs the missing Debian packages as root, says what
to run otherwise, and is quick when nothing is missing. Driven with fake dpkg-query / apt-get / id on PATH, so the
real system is never touched."""
import os, shutil, subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")
NEEDED = ["libsndfile1", "chromium", "festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-itapc16k", "festvox-italp16k",
          "festvox-suopuhe-lj", "festvox-czech-dita", "fluidsynth", "timgm6mb-soundfont", "dpkg"]


@pytest.fixture
def fake(tmp_path):
    "A bin folder with fake dpkg-query (reads `installed`), apt-get (logs to `apt.log`, installs into `installed`) and id."
    b = tmp_path / "bin"; b.mkdir()
    (tmp_path / "installed").write_text("")
    (b / "dpkg-query").write_text(f"""#!/bin/bash
shift 2  # -W -f=FORMAT
for p in "$@"; do grep -qx "$p" {tmp_path}/installed && printf '%s=installed ' "$p"; done; exit 0
""")
    (b / "apt-get").write_text(f"""#!/bin/bash
echo "$*" >> {tmp_path}/apt.log
[ -e {tmp_path}/apt_fails ] && exit 100
if [ "$1" = install ]; then for p in "$@"; do case $p in -*|install) ;; *) echo "$p" >> {tmp_path}/installed;; esac; done; fi
exit 0
""")
    (b / "id").write_text(f"#!/bin/bash\ncat {tmp_path}/uid\n")
    (tmp_path / "uid").write_text("0\n")
    for f in b.iterdir(): f.chmod(0o755)
    return tmp_path


def _run(fake, script="scripts/system_packages.sh", cwd=ROOT, path=None, env=None):
    env = {**os.environ, **(env or {}), "PATH": f"{fake / 'bin'}:{path if path is not None else os.environ['PATH']}"}
    return subprocess.run([BASH, str(cwd / script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _apt(fake):
    log = fake / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_root_installs_only_what_is_missing_then_a_second_run_is_a_quick_check(fake):
    (fake / "installed").write_text("\n".join(p for p in NEEDED if p not in ("chromium", "festival")) + "\n")
    r = _run(fake)
    assert r.returncode == 0, r.stderr
    assert _apt(fake) == ["update -qq", "install -y -qq --no-install-recommends chromium festival"]
    assert "installing chromium festival" in r.stderr
    r = _run(fake)  # everything is there now: no apt-get at all, no output
    assert r.returncode == 0 and r.stderr == "" and len(_apt(fake)) == 2


def test_not_root_prints_the_command_and_stops(fake):
    (fake / "uid").write_text("1000\n")
    (fake / "installed").write_text("libsndfile1\ndpkg\n")
    r = _run(fake)
    assert r.returncode == 1 and _apt(fake) == []
    missing = " ".join(p for p in NEEDED if p not in ("libsndfile1", "dpkg"))
    assert f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {missing}" in r.stderr, r.stderr
    (fake / "installed").write_text("\n".join(NEEDED) + "\n")  # all there: a normal user passes the check
    assert _run(fake).returncode == 0


def test_apt_failure_and_non_debian_are_clear_errors(fake):
    (fake / "apt_fails").touch()
    r = _run(fake)
    assert r.returncode == 1 and "apt-get could not install: libsndfile1 chromium" in r.stderr, r.stderr
    (fake / "bin" / "dpkg-query").unlink()
    r = _run(fake, path="")  # no dpkg-query anywhere on PATH
    assert r.returncode == 1 and "not Debian or Ubuntu" in r.stderr and "festival" in r.stderr, r.stderr
    assert "JUKEBOX_NB_SYSTEM_PACKAGES=skip" in r.stderr  # how to go on with the equivalents installed


def test_skip_opts_out_of_the_check_off_debian(fake):
    "With JUKEBOX_NB_SYSTEM_PACKAGES=skip nothing is queried or installed, and one line says so; any other value checks as usual."
    (fake / "bin" / "dpkg-query").unlink()
    for value, rc in (("skip", 0), ("yes", 1)):
        r = _run(fake, path="", env={"JUKEBOX_NB_SYSTEM_PACKAGES": value})
        assert r.returncode == rc, (value, r.stderr)
        assert ("not checking the Debian packages" in r.stderr) == (value == "skip") and _apt(fake) == [], r.stderr


def test_test_sh_checks_system_packages_before_anything_else(fake, tmp_path):
    "scripts/test.sh as a normal user with a package missing: the instructions, exit 1, and no set-up or tests run."
    tree = tmp_path / "tree"; (tree / "scripts").mkdir(parents=True)
    for s in ("test.sh", "system_packages.sh"): shutil.copy2(ROOT / "scripts" / s, tree / "scripts" / s)
    (tree / "scripts" / "setup.sh").write_text(f"touch {tmp_path}/setup_ran\n")
    (fake / "uid").write_text("1000\n")
    (fake / "installed").write_text("\n".join(p for p in NEEDED if p != "fluidsynth") + "\n")
    r = _run(fake, cwd=tree)
    assert r.returncode == 1 and "install -y --no-install-recommends fluidsynth" in r.stderr, r.stderr
    assert not (tmp_path / "setup_ran").exists()


def test_ci_runs_exactly_the_readme_command():
    lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[-1] == "bash scripts/test.sh" and not any("apt" in l for l in lines), lines
