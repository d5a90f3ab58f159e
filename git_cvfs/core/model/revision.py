"""The tree of one commit, as a mount or a `cvfs://` reader sees it: every path with its mode,
its real size (a managed file's from its ref) and where its bytes come from, listed by git in
one `ls-tree` and one batch read of the blobs small enough to be refs."""

from __future__ import annotations

import stat
from typing import NamedTuple

from git_cvfs.core.model.refscan import prefetch, read_blobs
from git_cvfs.errors import CvfsError, RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.git import Repo, run_git


class Entry(NamedTuple):
    mode: int  # st_mode: S_IFREG | 0o644 or 0o755, S_IFLNK | 0o777, S_IFDIR | 0o755
    size: int  # what a reader gets: the data's size for a managed file
    blob: str  # the git object (the ref's blob for a managed file); "" for directories
    ref: Ref | None  # the managed file's ref, None for content git holds itself


_DIR = stat.S_IFDIR | 0o755
_MODES = {"100644": stat.S_IFREG | 0o644, "100755": stat.S_IFREG | 0o755, "120000": stat.S_IFLNK | 0o777}


def resolve_commit(repo: Repo, rev: str) -> str:
    proc = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd=repo.root, check=False
    )
    out = proc.stdout.decode().strip() if proc.returncode == 0 else ""
    if not out:
        raise CvfsError(
            f"no commit {rev!r} in this repository",
            hint="name a branch, tag or commit (`git log --oneline` lists them); fetch it first if it is on a remote",
        )
    return out


class RevisionTree:
    """Paths are relative to the top, "/"-separated, "" for the top itself."""

    def __init__(self, repo: Repo, rev: str = "HEAD") -> None:
        self.repo = repo
        self.rev = rev
        self.commit = resolve_commit(repo, rev)
        self.time = int(repo.git("show", "-s", "--format=%ct", self.commit).decode().strip() or 0)
        self.entries: dict[str, Entry] = {"": Entry(_DIR, 0, "", None)}
        self.children: dict[str, list[str]] = {"": []}
        small: dict[str, list[str]] = {}
        prefetch(repo, ["--no-walk", self.commit])  # ls-tree -l reads every blob's size
        raw = repo.git("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", self.commit)
        for record in raw.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            mode, kind, blob, size = meta.decode().split()
            path = name.decode("utf-8", "surrogateescape")
            parent, _, base = path.rpartition("/")
            self.children[parent].append(base)
            if kind == "tree" or kind == "commit":  # a submodule shows as an empty directory
                self.entries[path] = Entry(_DIR, 0, "", None)
                self.children[path] = []
                continue
            self.entries[path] = Entry(_MODES.get(mode, stat.S_IFREG | 0o644), int(size), blob, None)
            if int(size) <= MAX_REF_BYTES and mode != "120000":
                small.setdefault(blob, []).append(path)
        for blob, data in read_blobs(repo, list(small)).items():
            try:
                ref = parse_ref(data)
            except RefError:
                ref = None  # shown as the text it is, as git's checkout would
            if ref is None:
                continue
            for path in small[blob]:
                old = self.entries[path]
                self.entries[path] = Entry(old.mode, ref.size, blob, ref)

    def get(self, path: str) -> Entry | None:
        return self.entries.get(path.strip("/"))

    @property
    def managed(self) -> dict[str, Ref]:
        return {p: e.ref for p, e in self.entries.items() if e.ref is not None}
