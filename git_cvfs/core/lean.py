"""The lean cache: once the primary archive holds an object and the work tree holds the
same bytes, the cache copy goes, so local disk holds the data once (cache.keep = false)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from git_cvfs.core.workspace import Workspace
from git_cvfs.format.ref import Ref
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.index_stat import unchanged_since_indexed


def drop_cache_copies(ws: Workspace, files: Iterable[tuple[str, Ref]], archived: Mapping[str, object] = {}) -> int:
    """Drop cache objects whose bytes are in the work tree and confirmed in the primary archive.

    archived: oids the caller just confirmed in the primary; otherwise this machine's
    record of what the primary holds is asked. Returns how many objects were dropped.
    """
    if ws.settings.cache_keep:
        return 0
    known = ArchivedLog(ws.repo.cvfs_dir, ws.settings.primary.url).known()
    candidates = {
        path: ref
        for path, ref in files
        if (ref.hex in archived or ref.hex in known) and ws.cache.has(ref.hex, ref.size)
    }
    if not candidates:
        return 0
    vouched = unchanged_since_indexed(ws.repo.index_file, ws.repo.root, sorted(candidates))
    dropped: set[str] = set()
    for path, ref in sorted(candidates.items()):
        if ref.hex in dropped or not _holds(ws, path, ref, vouched_by_git=path in vouched):
            continue
        ws.cache.remove(ref.hex)
        dropped.add(ref.hex)
    return len(dropped)


def _holds(ws: Workspace, path: str, ref: Ref, *, vouched_by_git: bool) -> bool:
    """Does the work-tree file hold exactly this object? git's stat data says so cheaply; a file
    written in the same second as the index ("racily clean") is hashed instead."""
    file = ws.repo.root / path
    try:
        if file.is_symlink() or file.stat().st_size != ref.size:
            return False
        return vouched_by_git or sha256_file(file) == (ref.hex, ref.size)
    except OSError:
        return False
