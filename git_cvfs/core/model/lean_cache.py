"""The lean cache: once the primary archive holds an object and the work tree holds the
same bytes, the cache copy goes, so local disk holds the data once (cache.keep = false)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from git_cvfs.core.model.managed import holding_committed_bytes
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.ref import Ref


def drop_cache_copies(ws: Workspace, files: Iterable[tuple[str, Ref]], archived: Mapping[str, object]) -> int:
    """Drop cache objects whose bytes are in the work tree and confirmed in the primary archive.

    archived: the oids the caller has the primary's word for (an answer, or this machine's
    record once the archive's gc marker showed it still holds). Nothing else is taken for
    it: after `git cvfs gc`, the record alone may name what the archive no longer has.
    Returns how many objects were dropped.
    """
    if ws.settings.cache_keep:
        return 0
    candidates = {path: ref for path, ref in files if ref.hex in archived and ws.cache.has(ref.hex, ref.size)}
    if not candidates:
        return 0
    vouched, verified = holding_committed_bytes(ws, sorted(candidates.items()))
    dropped: set[str] = set()
    for path in sorted(vouched | verified.keys()):
        ref = candidates[path]
        if ref.hex not in dropped:
            ws.cache.remove(ref.hex)
            dropped.add(ref.hex)
    return len(dropped)
