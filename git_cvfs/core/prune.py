"""prune: drop cache objects the primary archive is confirmed to hold (size and recorded etag)."""

from __future__ import annotations

from dataclasses import dataclass, field

from git_cvfs.core.managed import list_managed
from git_cvfs.core.records import recorded_in_primary
from git_cvfs.core.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.local.index_store import read_worktree_inventory, update_inventory
from git_cvfs.remote.archive import object_key


@dataclass
class PruneResult:
    dry_run: bool
    dropped: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    freed: int = 0
    rows_dropped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "dropped": self.dropped,
            "kept": self.kept,
            "freed": self.freed,
            "rows_dropped": self.rows_dropped,
        }


def prune(ws: Workspace, *, dry_run: bool) -> PruneResult:
    result = PruneResult(dry_run)
    ws.require_trusted(["primary"])
    _prune_small_rows(ws, result)
    recorded = recorded_in_primary(ws)
    for hex_digest in list(ws.cache.iter_objects()):
        size = ws.cache.object_path(hex_digest).stat().st_size
        etag = recorded.get(hex_digest)
        if etag is None:
            result.kept[hex_digest] = "no upload to the primary archive is recorded (run `git cvfs push`)"
            continue
        try:
            info = ws.primary.head(object_key(hex_digest))
        except CvfsError as exc:
            result.kept[hex_digest] = exc.message
            continue
        if info is None or info.size != size or info.etag != etag:
            result.kept[hex_digest] = "the primary archive's copy is missing or changed (run `git cvfs reconcile`)"
            continue
        result.dropped.append(hex_digest)
        result.freed += size
        if not dry_run:
            ws.cache.remove(hex_digest)
    return result


def _prune_small_rows(ws: Workspace, result: PruneResult) -> None:
    """Rows below minSize for paths git now keeps as plain blobs: nothing is archived for them any more.
    A path that is still a ref keeps its row whatever its size: dropping it would be drift."""
    rows = read_worktree_inventory(ws.repo)
    refs = {f.path for f in list_managed(ws) if f.ref is not None}
    small = [
        path for path, row in rows.items() if row.git and path not in refs and row.size < ws.settings.min_size_for(path)
    ]
    result.rows_dropped = sorted(small)
    if small and not result.dry_run:
        update_inventory(ws.repo, dict.fromkeys(small), from_index=False)
