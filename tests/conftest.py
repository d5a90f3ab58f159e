from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CVFS = str(BIN / "git-cvfs")
REAL_STORE = Path(os.path.expanduser("~")) / ".local" / "share" / "git-cvfs"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HOME, XDG dirs and git identity; the real store must stay untouched."""
    home = tmp_path / "home"
    home.mkdir()
    before = _snapshot(REAL_STORE)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_CVFS_NO_PROGRESS", "1")
    for var in list(os.environ):
        if (
            var.startswith(("GIT_CVFS_", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
            and var != "GIT_CVFS_NO_PROGRESS"
        ):
            monkeypatch.delenv(var)
    for key, value in {
        "user.name": "Test",
        "user.email": "test@example.invalid",
        "init.defaultBranch": "main",
        "advice.detachedHead": "false",
        "core.autocrlf": "false",
    }.items():
        subprocess.run(["git", "config", "--global", key, value], check=True)
    yield home
    assert _snapshot(REAL_STORE) == before, f"test touched the real store {REAL_STORE}"


def _snapshot(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p) for p in path.rglob("*"))


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def cvfs(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [CVFS, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git-cvfs {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Project:
    """A repository with git-cvfs set up on a file archive, plus a bare remote."""

    def __init__(self, root: Path, archive: Path, remote: Path) -> None:
        self.root = root
        self.archive = archive
        self.remote = remote

    def git(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return git(self.root, *args, **kw)  # type: ignore[arg-type]

    def cvfs(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return cvfs(self.root, *args, **kw)  # type: ignore[arg-type]

    def write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def blob(self, rev_path: str) -> bytes:
        return subprocess.run(
            ["git", "cat-file", "-p", rev_path], cwd=self.root, capture_output=True, check=True
        ).stdout

    def commit_all(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def clone(self, dest: Path, *, env: dict[str, str] | None = None) -> Path:
        git(dest.parent, "clone", "-q", str(self.remote), dest.name, env=env)
        return dest

    def archive_path(self, hex_digest: str) -> Path:
        return self.archive / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest


@pytest.fixture
def project(tmp_path: Path) -> Project:
    cvfs(tmp_path, "install", "--global")
    root = tmp_path / "project"
    archive = tmp_path / "archive"
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(tmp_path, "init", "-q", str(root))
    cvfs(root, "init", "--archive", archive.as_uri())
    git(root, "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    cvfs(root, "track", "data/**")
    git(root, "remote", "add", "origin", str(remote))
    return Project(root, archive, remote)


def rand(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)
