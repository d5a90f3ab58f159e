"""Every git subprocess call goes through here, so errors show the command that failed."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from git_cvfs.errors import GitError, UsageError


def run_git(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    cmd = ["git", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, check=False, env=env)
    except FileNotFoundError:
        if cwd is not None and not os.path.isdir(cwd):  # the directory to run in, not git, is missing
            raise GitError(f"{cwd} is gone: git cannot run there", hint="was it moved or deleted meanwhile?") from None
        raise GitError("git is not installed or not on PATH", hint="install git 2.39 or newer") from None
    if check and proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"`{shlex.join(cmd)}` failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc


def split_z(data: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p]


class Repo(NamedTuple):
    """A non-bare work tree and where its git data lives."""

    root: Path
    git_dir: Path
    common_dir: Path
    hooks_dir: Path  # `--git-path hooks` (core.hooksPath honoured), asked in the same git call
    bare: bool = False  # a repository with no work tree (a server's): root is its git directory

    @classmethod
    def discover_bare(cls, cwd: str | Path | None = None) -> Repo:
        """The repository around cwd, bare or not (for the commands that audit a server's)."""
        proc = run_git(
            ["rev-parse", "--path-format=absolute", "--is-bare-repository", "--git-dir", "--git-common-dir"],
            cwd=cwd,
            check=False,
        )
        lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        if proc.returncode != 0 or len(lines) != 3 or lines[0] != "true":
            return cls.discover(cwd)
        git_dir, common = Path(lines[1]), Path(lines[2])
        return cls(root=git_dir, git_dir=git_dir, common_dir=common, hooks_dir=common / "hooks", bare=True)

    @classmethod
    def discover(cls, cwd: str | Path | None = None) -> Repo:
        proc = run_git(
            [
                "rev-parse",
                "--path-format=absolute",
                "--show-toplevel",
                "--git-dir",
                "--git-common-dir",
                "--git-path",
                "hooks",
            ],
            cwd=cwd,
            check=False,
        )
        if proc.returncode != 0:
            raise UsageError(
                "not inside a git work tree",
                hint="cd into your repository, or create one with `git init`",
            )
        lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
        if len(lines) != 4:
            raise UsageError("not inside a git work tree", hint="git-cvfs needs a repository with a work tree")
        root, git_dir, common, hooks = (Path(p) for p in lines)
        return cls(root=root, git_dir=git_dir, common_dir=common, hooks_dir=hooks)

    @classmethod
    def find(cls, cwd: str | Path | None = None) -> Repo | None:
        """The repository around cwd, or None outside one."""
        try:
            return cls.discover(cwd)
        except UsageError:
            return None

    def git(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        return run_git(args, cwd=self.root, input=input, env=env).stdout

    @property
    def cvfs_dir(self) -> Path:
        return self.common_dir / "cvfs"

    @property
    def index_file(self) -> Path:
        env_index = os.environ.get("GIT_INDEX_FILE")
        if env_index:
            p = Path(env_index)
            return p if p.is_absolute() else self.root / p
        return self.git_dir / "index"

    def has_head(self) -> bool:
        return run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=self.root, check=False).returncode == 0

    def attr_values(self, attr: str, paths: Sequence[str]) -> dict[str, str]:
        """Value of one attribute for many paths, in one `git check-attr --stdin` call."""
        if not paths:
            return {}
        data = "\0".join(paths).encode("utf-8", "surrogateescape") + b"\0"
        out = self.git("check-attr", "-z", "--stdin", attr, input=data)
        fields = out.split(b"\0")
        result: dict[str, str] = {}
        for i in range(0, len(fields) - 2, 3):
            result[fields[i].decode("utf-8", "surrogateescape")] = fields[i + 2].decode()
        return result


class Worktree(NamedTuple):
    """One work tree of a repository, as `git worktree list` gives it."""

    path: str
    branch: str | None  # refs/heads/..., None when detached (or bare)
    bare: bool
    prunable: bool  # its directory is gone (git would prune it)


def worktrees(repo: Repo) -> list[Worktree]:
    """Every work tree of the repository: the main one first, then the linked ones."""
    out = run_git(["worktree", "list", "--porcelain", "-z"], cwd=repo.root).stdout
    found = []
    for record in out.split(b"\0\0"):
        fields = split_z(record)
        if not fields or not fields[0].startswith("worktree "):
            continue
        words = {f.partition(" ")[0]: f.partition(" ")[2] for f in fields[1:]}
        found.append(Worktree(fields[0][len("worktree ") :], words.get("branch"), "bare" in words, "prunable" in words))
    return found


class CatFile:
    """One long-lived `git cat-file --batch`: many blob reads for the price of one process,
    whole (`read`) or streamed in pieces of any size (`stream`)."""

    def __init__(self, repo: Repo) -> None:
        # git maps pack windows up to core.packedGitLimit (8 GiB) and keeps them while it runs:
        # reading a whole history's blobs would map the whole pack. Small windows, small limit.
        self._proc = subprocess.Popen(
            ["git", "-c", "core.packedGitWindowSize=16m", "-c", "core.packedGitLimit=64m", "cat-file", "--batch"],
            cwd=repo.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _ask(self, object_name: str) -> int:
        """The object's size, its content next on the pipe; -1 when it is missing."""
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(object_name.encode("utf-8", "surrogateescape") + b"\n")
        self._proc.stdin.flush()
        parts = self._proc.stdout.readline().split()
        if len(parts) != 3:  # "<name> missing" (or ambiguous), or git gone
            return -1
        return int(parts[2])

    def read(self, object_name: str) -> tuple[int, bytes | None]:
        """(size, content); content is None when the object is missing."""
        size = self._ask(object_name)
        if size < 0:
            return -1, None
        return size, b"".join(self._chunks(size))

    def stream(self, blob: str) -> Iterator[bytes]:
        """The blob's bytes in pieces of up to CAT_CHUNK; read the iterator to its end before
        the next request. A missing blob is a GitError."""
        size = self._ask(blob)
        if size < 0:
            raise GitError(f"blob {blob} is not in this repository")
        return self._chunks(size)

    def _chunks(self, size: int) -> Iterator[bytes]:
        assert self._proc.stdout is not None
        left = size
        while left:
            chunk = self._proc.stdout.read(min(CAT_CHUNK, left))
            if not chunk:
                raise GitError("git cat-file ended in the middle of a blob")
            left -= len(chunk)
            yield chunk
        self._proc.stdout.read(1)  # the newline after the content

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()

    def __enter__(self) -> CatFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CAT_CHUNK = 1 << 20


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes (SHA-1 repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
