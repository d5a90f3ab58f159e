"""offload: free disk by turning materialized files back into refs, only once the archive is proven.

Invariant 1: no user bytes are removed unless the primary archive is confirmed
to hold that exact object: the file is re-hashed and must be the committed
object, and the archive must answer with the right size and the etag recorded
when the object was uploaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from git_cvfs.core.managed import ManagedFile, State, list_managed, list_unversioned
from git_cvfs.core.records import recorded_in_primary
from git_cvfs.core.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.index_stat import patch_index_stat
from git_cvfs.local.worktree import write_bytes
from git_cvfs.remote.archive import object_key


@dataclass
class OffloadItem:
    path: str
    size: int
    url: str
    done: bool = False
    refused: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "size": self.size,
            "archive_url": self.url,
            "offloaded": self.done,
            "refused": self.refused,
        }


@dataclass
class OffloadResult:
    dry_run: bool
    items: list[OffloadItem] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(i.size for i in self.items if (i.done or self.dry_run) and not i.refused)

    @property
    def ok(self) -> bool:
        return not any(i.refused for i in self.items)

    def to_json(self) -> dict[str, object]:
        key = "would_free" if self.dry_run else "freed"
        return {"dry_run": self.dry_run, "ok": self.ok, key: self.freed, "files": [i.to_json() for i in self.items]}


def plan_budget(ws: Workspace, budget: int) -> list[ManagedFile]:
    """Least recently used materialized files (by access time, else mtime) until the rest fit in budget."""
    files = [f for f in list_managed(ws) + list_unversioned(ws) if f.state is State.MATERIALIZED]
    total = sum(f.size for f in files)

    def last_used(f: ManagedFile) -> float:
        st = os.stat(ws.repo.root / f.path)
        return max(st.st_atime, st.st_mtime)

    chosen = []
    for f in sorted(files, key=last_used):
        if total <= budget:
            break
        chosen.append(f)
        total -= f.size
    return chosen


def offload(
    ws: Workspace, pathspecs: Sequence[str], *, dry_run: bool, files: list[ManagedFile] | None = None
) -> OffloadResult:
    result = OffloadResult(dry_run)
    base = ws.settings.primary.url.rstrip("/")
    todo: list[tuple[OffloadItem, ManagedFile]] = []
    for f in (list_managed(ws, pathspecs) + list_unversioned(ws, pathspecs)) if files is None else files:
        if f.state in (State.REF, State.PLAIN):
            continue  # already offloaded, or plain git content with nothing archived to fall back on
        item = OffloadItem(f.path, f.size, f"{base}/{object_key(f.ref.hex)}" if f.ref else base)
        result.items.append(item)
        if f.state is State.MODIFIED or f.ref is None:
            item.refused = "modified since it was added; commit it first (`git add` + `git commit`)"
        elif f.state is not State.MATERIALIZED:
            item.refused = f.problem or f"cannot offload a file in state {f.state.value}"
        else:
            todo.append((item, f))
    if dry_run:
        return result
    if todo:
        ws.require_trusted(["primary"])  # one error naming the location, before any file is looked at
    recorded = recorded_in_primary(ws, (f.ref.hex for _, f in todo if f.ref))
    refresh = []
    for item, f in todo:
        try:
            _offload_one(ws, f, recorded.get(f.ref.hex) if f.ref else None)
        except CvfsError as exc:
            item.refused = exc.message
            continue
        item.done = True
        if f.ref and f.blob == git_blob_id(f.ref.encode()):
            refresh.append(f.path)
    patch_index_stat(ws.repo.index_file, ws.repo.root, refresh)
    return result


def _offload_one(ws: Workspace, f: ManagedFile, recorded: str | None) -> None:
    ref = f.ref
    assert ref is not None
    path = ws.repo.root / f.path
    before = os.lstat(path)
    if sha256_file(path) != (ref.hex, ref.size):
        raise CvfsError("its bytes are not the committed object (modified since it was added); commit it first")
    info = ws.primary.head(object_key(ref.hex))
    if info is None:
        raise CvfsError(f"the primary archive does not hold {ref.oid}; run `git cvfs push` first")
    if info.size != ref.size:
        raise CvfsError(f"the primary archive's copy has {info.size} bytes, not {ref.size}; run `git cvfs reconcile`")
    if not recorded:
        raise CvfsError("no upload of this object to the primary archive is recorded; run `git cvfs push` first")
    if recorded != info.etag:
        raise CvfsError(
            f"the primary archive's copy changed since it was uploaded (etag {info.etag}, recorded {recorded}); "
            "run `git cvfs reconcile`"
        )
    # The file must still be what was hashed at the instant it is replaced.
    write_bytes(ws.repo.root, f.path, ref.encode(), expect_stat=before)
    if not ws.settings.cache_keep:
        ws.cache.remove(ref.hex)  # the primary holds it, confirmed just now
