from __future__ import annotations

import os
import time
from pathlib import Path

from git_cvfs.local.index_stat import patch_index_stat
from tests.conftest import git


def _debug(repo: Path, path: str) -> str:
    return git(repo, "ls-files", "--debug", path).stdout


def test_patch_updates_only_the_named_entry_and_keeps_the_index_valid(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    for name in ("a", "b", "dir/c"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x")
    before_b = _debug(repo, "b")
    # Replace a's bytes with same-content file, new inode and older mtime: stat differs from the index.
    (repo / "a").unlink()
    (repo / "a").write_text("a")
    past = time.time_ns() - 5_000_000_000
    os.utime(repo / "a", ns=(past, past))
    assert patch_index_stat(repo / ".git" / "index", repo, ["a"]) == 1
    st = os.lstat(repo / "a")
    debug = _debug(repo, "a")
    assert f"ino: {st.st_ino}" in debug and f"mtime: {int(st.st_mtime)}:" in debug
    assert _debug(repo, "b") == before_b
    git(repo, "fsck", "--no-progress")  # index checksum still right
    assert git(repo, "status", "--porcelain").stdout == ""
    assert not (repo / ".git" / "index.lock").exists()


def test_patch_gives_up_quietly_when_the_index_is_locked(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "a").write_text("a")
    git(repo, "add", "a")
    (repo / ".git" / "index.lock").write_text("")
    before = (repo / ".git" / "index").read_bytes()
    assert patch_index_stat(repo / ".git" / "index", repo, ["a"], lock_wait=0.1) == 0
    assert (repo / ".git" / "index").read_bytes() == before
    assert (repo / ".git" / "index.lock").exists()  # someone else's lock is not ours to remove


def test_patch_works_on_index_version_4(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "config", "index.version", "4")
    for name in ("data/aa", "data/ab", "data/b"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name)
    git(repo, "add", ".")
    (repo / "data/ab").unlink()
    (repo / "data/ab").write_text("data/ab")
    assert patch_index_stat(repo / ".git" / "index", repo, ["data/ab"]) == 1
    assert f"ino: {os.lstat(repo / 'data/ab').st_ino}" in _debug(repo, "data/ab")
    git(repo, "status", "--porcelain")
