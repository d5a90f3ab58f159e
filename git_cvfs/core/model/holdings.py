"""What the archives hold: asked of them (a listing, or a HEAD per object), or, offline, taken
from records: this machine's log of verified uploads and the committed inventory rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.index_store import iter_worktree_rows
from git_cvfs.remote.archive import ObjectInfo, object_key

# Past this many objects one listing of the archive is cheaper than a HEAD each.
LIST_THRESHOLD = 32


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


def archive_view(ws: Workspace, name: str, hexes: set[str], *, list_all: bool = False) -> dict[str, ObjectInfo]:
    """hex -> what the archive holds of these objects (list_all: of all), by one listing or by a
    HEAD per object, whichever is cheaper. A listing keeps only what was asked for: an archive a
    team shares holds every repository's objects and every old version, and memory follows
    this repository, not the archive."""
    archive = ws.archive(name)
    if list_all or len(hexes) > LIST_THRESHOLD:
        listed = ((info.key.rsplit("/", 1)[-1], info) for info in archive.list("objects/"))
        return {hex_digest: info for hex_digest, info in listed if list_all or hex_digest in hexes}
    found = {}
    for hex_digest in hexes:
        info = archive.head(object_key(hex_digest))
        if info is not None:
            found[hex_digest] = info
    return found


class Holdings:
    """Plain classes here and in status and managed, not dataclasses: importing dataclasses (and
    inspect with it) cost `git cvfs status` 8 ms of its 100."""

    def __init__(self) -> None:
        self.holders: dict[str, set[str]] = {}  # oid hex -> archives holding it (right size)
        self.errors: dict[str, str] = {}  # archive -> why it could not be asked


def archives_holding(ws: Workspace, sizes: Mapping[str, int], *, offline: bool) -> Holdings:
    """Which archives hold each object (oid hex -> size): asked of the archives, batched; or,
    offline, as this machine's log of verified uploads and the inventory rows record it."""
    out = Holdings()
    if offline:
        for row in iter_worktree_rows(ws.repo):
            if row.hex in sizes:
                out.holders.setdefault(row.hex, set()).update(row.archives)
    for name in ws.archive_names:
        if offline:
            for hex_digest in ArchivedLog(ws.repo.cvfs_dir, ws.settings.archives[name]).known().keys() & sizes.keys():
                out.holders.setdefault(hex_digest, set()).add(name)
            continue
        try:
            view = archive_view(ws, name, set(sizes))
        except CvfsError as exc:
            out.errors[name] = exc.message
            continue
        for hex_digest, info in view.items():
            if sizes.get(hex_digest) == info.size:
                out.holders.setdefault(hex_digest, set()).add(name)
    return out
