"""A directory archive a team shares across Unix accounts (/srv/archive, group-writable).

The second account is a real one: another uid, in the team's group, run through setpriv. It
keeps only CAP_DAC_READ_SEARCH (to read this test's interpreter under a private home), so every
write it makes is checked against the file modes, as for any user.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, new_project, rand

OTHER_UID = 64001
TEAM_GID = 64000


@pytest.fixture
def team_dir() -> Iterator[Path]:
    """Where the team's archive and remote live: a directory others may enter (pytest's own
    are private to root, and git asks access(2), which ignores the other account's capability)."""
    path = Path(tempfile.mkdtemp(prefix="cvfs-team-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, whatever this process was started with: it takes the group's write bit."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def as_other(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        "setpriv",
        f"--reuid={OTHER_UID}",
        f"--regid={OTHER_UID}",
        f"--groups={TEAM_GID}",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        *args,
    ]
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def other_account(team_dir: Path, archive: Path) -> Path:
    """The other account's home, with git-cvfs set up and the team's archive approved."""
    home = team_dir / "other-home"
    home.mkdir()
    os.chown(home, OTHER_UID, OTHER_UID)
    for args in (
        ("git", "config", "--global", "user.name", "Other"),
        ("git", "config", "--global", "user.email", "other@example.invalid"),
        ("git", "config", "--global", "safe.directory", "*"),
        ("git", "cvfs", "install", "--global"),
        ("git", "cvfs", "trust", archive.as_uri()),
    ):
        done = as_other(home, home, *args)
        assert done.returncode == 0, (args, done.stderr)
    return home


def team_archive(team_dir: Path) -> Path:
    shared = team_dir / "team-archive"
    shared.mkdir()
    os.chown(shared, 0, TEAM_GID)
    os.chmod(shared, 0o2775)  # the team's directory: group-writable, new entries in the group
    return shared


def dir_modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_dir()}


def test_a_team_member_archives_into_directories_another_member_made(team_dir: Path, umask_022: None) -> None:
    shared = team_archive(team_dir)
    project = new_project(team_dir, {"archive.primary.url": shared.as_uri()})
    first = rand(300_000, 1)
    project.write("data/first.bin", first)
    project.commit_all()  # makes objects/, its fan-out, tmp/ and repos/
    project.git("push", "-q", "origin", "main")

    home = other_account(team_dir, shared)
    done = as_other(home, home, "git", "clone", "-q", str(project.remote), "clone")
    assert done.returncode == 0, done.stderr
    clone = home / "clone"
    assert (clone / "data/first.bin").read_bytes() == first

    second = rand(300_000, 2)
    (clone / "data/second.bin").write_bytes(second)
    os.chown(clone / "data/second.bin", OTHER_UID, OTHER_UID)
    for args in (("git", "add", "-A"), ("git", "commit", "-q", "-m", "second")):
        done = as_other(clone, home, *args)
        assert done.returncode == 0 and "warning" not in done.stderr, (args, done.stderr)
    hex_digest = hashlib.sha256(second).hexdigest()
    stored = shared / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest
    assert stored.read_bytes() == second and stored.stat().st_uid == OTHER_UID
    audit = as_other(clone, home, "git", "cvfs", "reconcile")
    assert audit.returncode == 0 and "no drift" in audit.stdout, audit.stdout + audit.stderr
    assert set(dir_modes(shared).values()) == {0o2775}, dir_modes(shared)  # whoever made each


def test_directories_of_an_archive_nobody_shares_keep_the_umask(tmp_path: Path, umask_022: None) -> None:
    private = tmp_path / "archive"
    private.mkdir(mode=0o700)
    project = new_project(tmp_path, {"archive.primary.url": private.as_uri()})
    project.write("data/a.bin", rand(300_000, 3))
    project.commit_all()
    assert dir_modes(private) and set(dir_modes(private).values()) == {0o755}, dir_modes(private)


def test_two_accounts_work_in_one_clone(team_dir: Path) -> None:
    """A project directory on a team server that several people pull, ensure and commit in,
    shared as git needs it shared (its work tree too): by everyone's umask of 002."""
    old = os.umask(0o002)
    try:
        two_accounts_work_in_one_clone(team_dir)
    finally:
        os.umask(old)


def two_accounts_work_in_one_clone(team_dir: Path) -> None:
    shared = team_archive(team_dir)
    project = new_project(team_dir, {"archive.primary.url": shared.as_uri()})
    first = rand(300_000, 4)
    project.write("data/first.bin", first)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    work = team_dir / "work"
    work.mkdir()
    os.chown(work, 0, TEAM_GID)
    os.chmod(work, 0o2775)
    git(work, "clone", "-q", str(project.remote), "p")
    clone = work / "p"
    # The first member frees the file and brings it back, and pushes: its locks, logs and
    # cache are made.
    git(clone, "cvfs", "offload", "data/first.bin")
    git(clone, "cvfs", "ensure", "data")
    git(clone, "cvfs", "push")  # notes what it found archived: .git/cvfs/verified/

    home = other_account(team_dir, shared)
    for args in (
        ("git", "cvfs", "offload", "data/first.bin"),
        ("git", "cvfs", "ensure", "data"),
        ("sh", "-c", "umask 002; head -c 300000 /dev/urandom > data/second.bin"),
        ("git", "add", "-A"),
        ("git", "commit", "-q", "-m", "second"),
    ):
        done = as_other(clone, home, "sh", "-c", 'umask 002; exec "$@"', "-", *args)
        assert done.returncode == 0 and "warning" not in done.stderr, (args, done.stderr)
    assert (clone / "data/first.bin").read_bytes() == first
    second = (clone / "data/second.bin").read_bytes()
    hex_digest = hashlib.sha256(second).hexdigest()
    assert (shared / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest).read_bytes() == second
    # and the first member goes on where the other left off
    git(clone, "cvfs", "offload", "data/second.bin")
    git(clone, "cvfs", "ensure", "data")
    audit = git(clone, "cvfs", "reconcile")
    assert "no drift" in audit.stdout, audit.stdout
