"""Which files are managed, and what state each is in on this machine."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path

from git_cvfs.core.model.pathspecs import selected, without_attr
from git_cvfs.core.model.refscan import small_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.git import git_blob_id, split_z
from git_cvfs.local.index_stat import unchanged_since_indexed
from git_cvfs.local.index_store import unversioned_rows
from git_cvfs.local.worktree import HeadReader, read_head


class State(Enum):
    MATERIALIZED = "materialized"
    REF = "ref"  # the work tree holds the ref, not the bytes
    MODIFIED = "modified"  # the work tree's bytes differ in size from the ref's
    MISSING = "missing"  # deleted from the work tree
    PLAIN = "plain"  # below minSize: stored in git itself
    INVALID = "invalid"  # the index or work tree holds a malformed ref
    SPARSE = "sparse"  # outside the sparse checkout: git keeps it out of the work tree on purpose


class ManagedFile:
    __slots__ = ("blob", "path", "plain_size", "problem", "ref", "state", "worktree_ref")

    def __init__(
        self,
        path: str,
        blob: str,
        ref: Ref | None,  # from the index
        state: State,
        worktree_ref: Ref | None = None,
        problem: str | None = None,
        plain_size: int = 0,
    ) -> None:
        self.path = path
        self.blob = blob
        self.ref = ref
        self.state = state
        self.worktree_ref = worktree_ref
        self.problem = problem
        self.plain_size = plain_size

    def __repr__(self) -> str:
        return f"ManagedFile({self.path!r}, {self.state.value}, ref={self.ref}, worktree_ref={self.worktree_ref})"

    @property
    def size(self) -> int:
        """The object's size, or for plain files the bytes on disk."""
        target = self.target
        return target.size if target else self.plain_size

    @property
    def target(self) -> Ref | None:
        """The object the work tree asks for: its own ref when it holds one."""
        return self.worktree_ref or self.ref


def list_managed(
    ws: Workspace, pathspecs: Sequence[str] = (), *, outside_scope: list[str] | None = None
) -> list[ManagedFile]:
    """The managed files (filter=cvfs) among the index's entries, each in its state here.
    outside_scope: filled with the paths of entries that hold a ref where git-cvfs does not
    manage (from the same listing: no second pass over the index)."""
    repo = ws.repo
    entries = []
    sparse = set()
    given, by_attributes = without_attr(pathspecs)
    for record in split_z(repo.git("ls-files", "-s", "-t", "-z", "--full-name", "--", *given)):
        meta, _, path = record.partition("\t")
        tag, mode, blob, stage = meta.split()
        if stage == "0" and mode.startswith("100"):
            entries.append((path, blob))
            if tag == "S":  # skip-worktree: a sparse checkout leaves it out
                sparse.add(path)
    if by_attributes:
        picked = set(selected(ws, pathspecs, (path for path, _ in entries)))
        entries = [(path, blob) for path, blob in entries if path in picked]
    if not entries:
        return []
    attrs = repo.attr_values("filter", [p for p, _ in entries])
    managed = [(p, b) for p, b in entries if attrs.get(p) == "cvfs"]
    unmanaged = []
    if outside_scope is not None:
        unmanaged = [(p, b) for p, b in entries if attrs.get(p) != "cvfs" and not p.startswith(".cvfs/")]
    _, contents = small_blobs(repo, [b for _, b in managed + unmanaged])  # one lookup for both
    if outside_scope is not None:
        outside_scope.extend(_holding_refs(unmanaged, contents))
    with HeadReader(repo.root) as heads:
        return [
            _sparse(path, blob, contents.get(blob))
            if path in sparse
            else _classify(ws, path, blob, contents.get(blob), heads)
            for path, blob in managed
        ]


def _sparse(path: str, blob: str, index_data: bytes | None) -> ManagedFile:
    try:
        ref = parse_ref(index_data) if index_data is not None else None
    except RefError:
        ref = None
    return ManagedFile(path, blob, ref, State.SPARSE)


def _classify(
    ws: Workspace, path: str, blob: str, index_data: bytes | None, heads: HeadReader | None = None
) -> ManagedFile:
    try:
        ref = parse_ref(index_data) if index_data is not None else None
    except RefError as exc:
        return ManagedFile(path, blob, None, State.INVALID, problem=f"staged ref is invalid: {exc.message}")
    try:
        head = heads.read(path) if heads is not None else read_head(ws.repo.root, path)
    except CvfsError as exc:
        return ManagedFile(path, blob, ref, State.INVALID, problem=exc.message)
    if head is None:
        return ManagedFile(path, blob, ref, State.MISSING)
    st, first = head
    if st.st_size <= MAX_REF_BYTES:
        try:
            wt_ref = parse_ref(first)
        except RefError as exc:
            return ManagedFile(path, blob, ref, State.INVALID, problem=f"work tree ref is invalid: {exc.message}")
        if wt_ref is not None:
            return ManagedFile(path, blob, ref, State.REF, worktree_ref=wt_ref)
    if ref is None:
        return ManagedFile(path, blob, None, State.PLAIN, plain_size=st.st_size)
    if st.st_size != ref.size:
        return ManagedFile(path, blob, ref, State.MODIFIED)
    return ManagedFile(path, blob, ref, State.MATERIALIZED)


def list_unversioned(ws: Workspace, pathspecs: Sequence[str] = ()) -> list[ManagedFile]:
    """Files git does not hold (gitignored) but the inventory records (`git: false` rows):
    the row is their only record, so it stands in for the index."""
    rows = list(unversioned_rows(ws.repo))
    picked = set(selected(ws, pathspecs, (row.path for row in rows)))  # git does not match these: git's rules, here
    return [_classify(ws, row.path, "", Ref(row.hex, row.size).encode()) for row in rows if row.path in picked]


def holding_committed_bytes(
    ws: Workspace, files: Sequence[tuple[str, Ref]]
) -> tuple[set[str], dict[str, os.stat_result]]:
    """Which work-tree files hold exactly their object: (vouched for by git's index stat data;
    verified by hashing, each with its stat, unchanged while it was hashed). A file git cannot
    vouch for (written in the same second as the index, or an index entry left stale) is
    hashed; a symlink or a file of the wrong size holds nothing."""
    root = ws.repo.root
    sized = []
    for path, ref in files:
        try:
            st = os.lstat(f"{root}/{path}")  # one call, no Path: the commit hook asks for every file
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == ref.size:
            sized.append((path, ref))
    refs = dict(sized)
    vouched = unchanged_since_indexed(
        ws.repo.index_file, root, list(refs), lambda path: git_blob_id(refs[path].encode())
    )
    verified: dict[str, os.stat_result] = {}
    for path, ref in sized:
        if path in vouched:
            continue
        try:
            holds, unchanged = hashed_against(root, path, ref)
        except OSError:
            continue
        if holds and unchanged is not None:
            verified[path] = unchanged
    return vouched, verified


def hashed_against(root: Path, path: str, ref: Ref) -> tuple[bool, os.stat_result | None]:
    """Whether the file's bytes, hashed now, are ref's object; and its stat from before the
    hash, or None when the file changed while it was hashed. OSError when it cannot be read."""
    before = os.lstat(root / path)
    holds = sha256_file(root / path) == (ref.hex, ref.size)
    return holds, before if _same_file(before, os.lstat(root / path)) else None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns, b.st_ctime_ns)


def _holding_refs(entries: Sequence[tuple[str, str]], contents: Mapping[str, bytes]) -> list[str]:
    out = []
    for path, blob in entries:
        data = contents.get(blob)
        if data is None:
            continue
        try:
            if parse_ref(data) is not None:
                out.append(path)
        except RefError:
            continue
    return out
