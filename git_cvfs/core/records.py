"""What the primary archive holds, as far as our records go: this machine's log of uploads
and the committed inventory rows (which win: they are the shared record)."""

from __future__ import annotations

from collections.abc import Iterable

from git_cvfs.core.workspace import Workspace
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.index_store import iter_worktree_rows


def recorded_in_primary(ws: Workspace, hexes: Iterable[str]) -> dict[str, str]:
    """oid hex -> the etag the primary answered when the object was uploaded, for these objects
    (only they are held: the inventory is read a row at a time, and every row is checked)."""
    wanted = set(hexes)
    known = ArchivedLog(ws.repo.cvfs_dir, ws.settings.primary).known()
    recorded = {h: known[h] for h in wanted if h in known}
    for row in iter_worktree_rows(ws.repo):
        if row.hex in wanted:
            etag = row.archives.get("primary", {}).get("etag")
            if etag:
                recorded[row.hex] = etag
    return recorded
