"""prune: drop cache objects the archives are shown, when prune runs, to hold (verified bytes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from git_cvfs.core.model.copies import CopyChecker
from git_cvfs.core.model.managed import list_managed
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.inventory import Row
from git_cvfs.format.ref import Ref
from git_cvfs.local.index_store import iter_worktree_rows, update_inventory

SHOWN = 1000  # rows named in the report; a hostile inventory may hold millions


@dataclass
class PruneResult:
    dry_run: bool
    dropped: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    freed: int = 0
    rows_dropped: list[str] = field(default_factory=list)  # the first SHOWN of them
    rows_dropped_count: int = 0
    unasked: dict[str, str] = field(default_factory=dict)  # among kept: the primary could not be asked

    @property
    def ok(self) -> bool:
        """Whether every cache object got an answer: one kept because the archive could not be
        asked is prune not done, not a copy found missing."""
        return not self.unasked

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "dropped": self.dropped,
            "kept": self.kept,
            "freed": self.freed,
            "rows_dropped": self.rows_dropped,
            "rows_dropped_count": self.rows_dropped_count,
            "ok": self.ok,
            "unasked": self.unasked,
        }


def prune(ws: Workspace, *, dry_run: bool) -> PruneResult:
    """Drop cache objects that enough archives are shown, now, to hold (core/model/copies.py)."""
    result = PruneResult(dry_run)
    ws.require_trusted(["primary"])
    _prune_small_rows(ws, result)
    checker = CopyChecker(ws)
    for hex_digest in list(ws.cache.iter_objects()):
        path = ws.cache.object_path(hex_digest)
        size = path.stat().st_size
        copies = checker.copies(Ref(hex_digest, size), local=path)
        if not copies.enough:
            result.kept[hex_digest] = copies.why_not()
            if copies.primary_unasked is not None:
                result.unasked[hex_digest] = copies.primary_unasked
            continue
        result.dropped.append(hex_digest)
        result.freed += size
        if not dry_run:
            ws.cache.remove(hex_digest)
    return result


def _prune_small_rows(ws: Workspace, result: PruneResult) -> None:
    """Rows below minSize for paths git now keeps as plain blobs: nothing is archived for them any more.
    A path that is still a ref keeps its row whatever its size: dropping it would be drift."""
    refs = {f.path for f in list_managed(ws) if f.ref is not None}

    def small(row: Row) -> bool:
        return row.git and row.path not in refs and row.size < ws.settings.min_size_for(row.path)

    for row in iter_worktree_rows(ws.repo):
        if small(row):
            result.rows_dropped_count += 1
            if len(result.rows_dropped) < SHOWN:
                result.rows_dropped.append(row.path)
    if result.rows_dropped_count and not result.dry_run:
        update_inventory(ws.repo, {}, from_index=False, drop=small)
