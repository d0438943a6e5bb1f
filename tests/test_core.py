"""core: atomic writes reach the disk (fsync) before they are renamed into place."""
import os, stat

import jukebox_nb.core as core


def _record_syncs(monkeypatch):
    "Patch os.fsync/os.replace to log ('fsync', inode, is_dir) and ('replace', dst) in call order."
    log, real_fsync, real_replace = [], os.fsync, os.replace
    def fsync(fd):
        st = os.fstat(fd); log.append(("fsync", st.st_ino, stat.S_ISDIR(st.st_mode))); real_fsync(fd)
    def replace(src, dst):
        log.append(("replace", os.stat(src).st_ino)); real_replace(src, dst)
    monkeypatch.setattr(core.os, "fsync", fsync); monkeypatch.setattr(core.os, "replace", replace)
    return log


def test_atomic_path_fsyncs_file_before_rename_and_then_the_folder(monkeypatch, tmp_path):
    log = _record_syncs(monkeypatch)
    with core.atomic_path(tmp_path / "m.safetensors") as tmp: tmp.write_bytes(b"weights")
    ino = (tmp_path / "m.safetensors").stat().st_ino
    assert ("fsync", ino, False) in log, log  # the file's data was synced ...
    assert log.index(("fsync", ino, False)) < log.index(("replace", ino)), log  # ... before the rename
    if hasattr(os, "O_DIRECTORY"):  # POSIX: the rename itself is made durable by syncing the folder
        dir_ino = tmp_path.stat().st_ino
        assert ("fsync", dir_ino, True) in log[log.index(("replace", ino)):], log


def test_atomic_write_fsyncs_the_folder_after_rename(monkeypatch, tmp_path):
    log = _record_syncs(monkeypatch)
    with core.atomic_write(tmp_path / "a.txt", "w") as f: f.write("hello")
    ino = (tmp_path / "a.txt").stat().st_ino
    assert log.index(("fsync", ino, False)) < log.index(("replace", ino)), log
    if hasattr(os, "O_DIRECTORY"):
        assert ("fsync", tmp_path.stat().st_ino, True) in log[log.index(("replace", ino)):], log


def test_atomic_path_failure_leaves_nothing(tmp_path):
    try:
        with core.atomic_path(tmp_path / "x.wav") as tmp: tmp.write_bytes(b"half"); raise KeyboardInterrupt
    except KeyboardInterrupt: pass
    assert list(tmp_path.iterdir()) == []
