"""What the primary archive holds, as far as our records go: this machine's log of uploads
and the committed inventory rows (which win: they are the shared record)."""

from __future__ import annotations

from git_cvfs.core.workspace import Workspace
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.index_store import read_worktree_inventory


def recorded_in_primary(ws: Workspace) -> dict[str, str]:
    """oid hex -> the etag the primary answered when the object was uploaded."""
    recorded = dict(ArchivedLog(ws.repo.cvfs_dir, ws.settings.primary).known())
    for row in read_worktree_inventory(ws.repo).values():
        etag = row.archives.get("primary", {}).get("etag")
        if etag:
            recorded[row.hex] = etag
    return recorded
