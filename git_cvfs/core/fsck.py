"""fsck: every cache object hashes to its name, every ref in HEAD and the index is valid, shards parse."""

from __future__ import annotations

from dataclasses import dataclass, field

from git_cvfs.core.model.refscan import head_and_index_blobs, scan_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.local.index_store import check_inventory


@dataclass
class FsckResult:
    objects_checked: int = 0
    corrupt_objects: list[str] = field(default_factory=list)
    bad_refs: dict[str, str] = field(default_factory=dict)
    inventory_error: str | None = None
    stale_tmp_removed: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt_objects and not self.bad_refs and self.inventory_error is None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "objects_checked": self.objects_checked,
            "corrupt_objects": self.corrupt_objects,
            "bad_refs": self.bad_refs,
            "inventory_error": self.inventory_error,
            "stale_tmp_removed": self.stale_tmp_removed,
        }


def fsck(ws: Workspace, *, repair: bool) -> FsckResult:
    result = FsckResult()
    for hex_digest in ws.cache.iter_objects():
        result.objects_checked += 1
        if not ws.cache.verify(hex_digest):
            result.corrupt_objects.append(hex_digest)
            if repair:
                ws.cache.remove(hex_digest)  # a damaged copy is worse than none: the archive has the real one
    if ws.repo.bare:  # no index, no .gitattributes read: every ref at HEAD, and HEAD's inventory
        from git_cvfs.core.bare import head_refs, head_rows

        _, malformed = head_refs(ws)
        result.bad_refs = dict(malformed)
        try:
            head_rows(ws)
        except CvfsError as exc:
            result.inventory_error = exc.message
        return result
    items = head_and_index_blobs(ws.repo)
    managed = ws.repo.attr_values("filter", sorted({p for p, _ in items}))
    scan = scan_blobs(ws.repo, [(p, b) for p, b in items if managed.get(p) == "cvfs"])
    result.bad_refs = dict(scan.malformed)
    try:
        check_inventory(ws.repo)
    except CvfsError as exc:
        result.inventory_error = exc.message
    result.stale_tmp_removed = ws.cache.clean_stale_tmp()
    return result
