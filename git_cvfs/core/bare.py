"""reconcile, fsck and ls-files in a bare repository (a server's): no work tree and no index,
so what is audited is what the repository's refs hold: every managed file at HEAD with its
inventory row, and every object any ref's history names in every archive."""

from __future__ import annotations

from dataclasses import dataclass

from git_cvfs.core.model.holdings import archive_view
from git_cvfs.core.model.refscan import refs_in_history, scan_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.reconcile import ReconcileReport
from git_cvfs.errors import CvfsError
from git_cvfs.format.inventory import SHARD_DIR, Row, iter_rows
from git_cvfs.format.ref import Ref
from git_cvfs.local.git import split_z


@dataclass(frozen=True)
class BareFile:
    path: str
    ref: Ref


def head_refs(ws: Workspace) -> tuple[list[BareFile], list[tuple[str, str]]]:
    """(the refs in HEAD's tree, and its malformed ones as (path, problem)). A bare repository
    reads no .gitattributes, so every blob that is a valid ref counts as managed."""
    repo = ws.repo
    if not repo.has_head():
        return [], []
    items = []
    for record in split_z(repo.git("ls-tree", "-r", "-z", "--full-tree", "HEAD")):
        meta, _, path = record.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob" and mode.startswith("100") and not path.startswith(SHARD_DIR + "/"):
            items.append((path, blob))
    scan = scan_blobs(repo, items)
    return [BareFile(p, r) for p, r in scan.refs], scan.malformed


def head_rows(ws: Workspace) -> dict[str, Row]:
    repo = ws.repo
    rows: dict[str, Row] = {}
    if not repo.has_head():
        return rows
    for record in split_z(repo.git("ls-tree", "-z", "--full-tree", "HEAD", f"{SHARD_DIR}/")):
        meta, _, shard = record.partition("\t")
        if not shard.endswith(".jsonl"):
            continue
        data = repo.git("cat-file", "blob", meta.split()[2])
        rows.update({row.path: row for row in iter_rows(data.splitlines(keepends=True), where=f"HEAD:{shard}")})
    return rows


def reconcile_bare(ws: Workspace) -> ReconcileReport:
    ws.require_trusted()
    report = ReconcileReport()
    files, malformed = head_refs(ws)
    for path, why in malformed:
        report.add(path, "invalid_ref", why)
    rows = head_rows(ws)
    history = refs_in_history(ws.repo, ["--all"])
    objects: dict[str, tuple[str, Ref]] = {ref.hex: (path, ref) for path, ref in history}
    objects.update({f.ref.hex: (f.path, f.ref) for f in files})
    report.checked_paths = len(files)
    for name in ws.archive_names:
        try:
            view = archive_view(ws, name, set(objects))
        except CvfsError as exc:
            report.add("*", "archive_unreachable", exc.message, name)
            continue
        for hex_digest, (path, ref) in sorted(objects.items(), key=lambda item: item[1][0]):
            info = view.get(hex_digest)
            if info is None:
                report.add(
                    path, "missing_in_archive", f"{ref.oid}: no archive has it, and a bare repository no copy", name
                )
            elif info.size != ref.size:
                report.add(path, "size_drift", f"archive holds {info.size} bytes, the ref says {ref.size}", name)
    at_head = {f.path: f.ref for f in files}
    for path, ref in sorted(at_head.items()):
        row = rows.get(path)
        if row is None:
            report.add(path, "unindexed_ref", f"{ref.oid} has no inventory row")
        elif (row.hex, row.size) != (ref.hex, ref.size):
            report.add(path, "oid_mismatch", f"the ref says {ref.oid}, the inventory says {row.oid}")
    for path, row in sorted(rows.items()):
        if row.git and path not in at_head:
            report.add(path, "stale_row", "the inventory has a row, HEAD has no ref there")
    return report
