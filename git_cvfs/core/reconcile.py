"""reconcile: one audit across the work tree, git's index, the inventory and every archive."""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from git_cvfs.core.model.claims import other_repositories, remote_urls, roots
from git_cvfs.core.model.holdings import archive_view
from git_cvfs.core.model.managed import ManagedFile, State, holding_committed_bytes, list_managed
from git_cvfs.core.model.refscan import refs_in_history, require_whole_history
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.format.inventory import Row
from git_cvfs.format.ref import Ref
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.index_store import (
    check_unversioned_count,
    hexes_in_every_worktree,
    iter_worktree_rows,
    replace_inventory,
    tolerant_rows,
    update_inventory,
)
from git_cvfs.remote.archive import Archive, ObjectInfo, object_key
from git_cvfs.remote.verify import Verdict, Verification, verify_copy


@dataclass(frozen=True)
class Finding:
    path: str
    kind: str
    detail: str
    archive: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "archive": self.archive, "detail": self.detail}


# Findings listed one by one; past this many only their number is kept (a hostile inventory
# can make a million stale rows, and the report must not hold them all).
MAX_FINDINGS = 10_000


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    omitted: int = 0  # findings past MAX_FINDINGS, counted, not listed
    checked_paths: int = 0
    read_back: int = 0  # objects read back and hashed (--verify)
    stale_rows: int = 0
    stale_paths: list[str] = field(default_factory=list)  # the first MAX_FINDINGS of them
    fixed: list[str] = field(default_factory=list)
    fixed_omitted: int = 0  # stale rows removed past MAX_FINDINGS, counted, not listed
    # Rows behind the archives: an archive holds the object under an etag this machine verified
    # (a refill by `push --archive`, an upload by pre-push after an offline commit) that the row
    # does not record yet. Not drift; `--fix-index` records them.
    outdated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.omitted

    def add(self, path: str, kind: str, detail: str, archive: str | None = None) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(Finding(path, kind, detail, archive))
        else:
            self.omitted += 1

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked_paths": self.checked_paths,
            "read_back": self.read_back,
            "findings": [f.to_json() for f in self.findings],
            "findings_omitted": self.omitted,
            "fixed": self.fixed,
            "fixed_omitted": self.fixed_omitted,
            "rows_outdated": self.outdated[:MAX_FINDINGS],
            "rows_outdated_count": len(self.outdated),
        }


def reconcile(
    ws: Workspace,
    *,
    orphans: bool,
    fix_index: bool,
    from_blob: bool,
    verify: bool = False,
    sample: float = 100.0,
) -> ReconcileReport:
    ws.require_trusted()  # an audit asks every archive: each must be approved on this machine
    if orphans:  # "no commit names it" needs every commit
        require_whole_history(ws.repo, "reconcile --orphans", "they may need archived objects")
    report = ReconcileReport()
    outside: list[str] = []
    files = list_managed(ws, outside_scope=outside)
    refs: dict[str, tuple[ManagedFile, Ref]] = {}
    for f in files:
        if f.state is State.INVALID:
            report.add(f.path, "invalid_ref", f.problem or "invalid ref")
        elif f.ref is not None:
            refs[f.path] = (f, f.ref)
    for path in outside:
        report.add(
            path,
            "ref_outside_scope",
            "a git-cvfs ref at a path git-cvfs does not manage: a clone gets the JSON (track the path, or move it back)",
        )
    if from_blob:
        rows, _ = tolerant_rows(ws.repo)  # --from-blob must work when a shard is damaged
    else:
        rows = _rows_to_check(ws, refs, report)
    report.checked_paths += len(set(refs) | set(rows))
    hexes = {ref.hex for _, ref in refs.values()} | {row.hex for row in rows.values()}
    views: dict[str, dict[str, ObjectInfo]] = {}
    for name in ws.archive_names:
        try:
            views[name] = archive_view(ws, name, hexes, list_all=orphans)
        except CvfsError as exc:
            report.add("*", "archive_unreachable", exc.message, name)

    vouched, verified = holding_committed_bytes(
        ws, [(f.path, ref) for f, ref in refs.values() if f.state is State.MATERIALIZED]
    )
    local_bytes = vouched | verified.keys()
    known = {name: ArchivedLog(ws.repo.cvfs_dir, ws.settings.archives[name]).known() for name in views}
    fixes: dict[str, Row | None] = {}
    for path, (f, ref) in sorted(refs.items()):
        row = rows.get(path)
        if f.state is State.MODIFIED or (f.state is State.MATERIALIZED and path not in local_bytes):
            report.add(path, "modified", "the work-tree file is not the committed object")
        facts: dict[str, dict[str, str]] = {}
        behind: dict[str, dict[str, str]] = {}  # archives whose verified copy the row does not record
        for name, view in views.items():
            info = view.get(ref.hex)
            recorded = row.archives.get(name) if row is not None and row.hex == ref.hex else None
            if info is None:
                have = ws.cache.has(ref.hex, ref.size) or path in local_bytes
                kind = "pending_upload" if have else "missing_in_archive"
                why = "only this machine has the bytes" if have else "no archive and no local copy has the bytes"
                report.add(path, kind, f"{ref.oid}: {why}", name)
                continue
            facts[name] = {"etag": info.etag, "key": object_key(ref.hex)}
            vouched_here = known[name].get(ref.hex) == info.etag  # this machine verified these bytes
            if info.size != ref.size:
                report.add(path, "size_drift", f"archive holds {info.size} bytes, the ref says {ref.size}", name)
            elif recorded is not None and recorded.get("etag") not in (None, info.etag):
                if vouched_here:
                    behind[name] = facts[name]
                else:
                    report.add(path, "etag_drift", f"etag {info.etag}, recorded {recorded.get('etag')}", name)
            elif (recorded is None or recorded.get("etag") is None) and vouched_here and row is not None:
                behind[name] = facts[name]
        held = sum(1 for view in views.values() if (i := view.get(ref.hex)) is not None and i.size == ref.size)
        if ws.settings.min_copies > 1 and held < ws.settings.min_copies:
            report.add(
                path,
                "below_min_copies",
                f"{ref.oid}: {held} archive(s) hold it, archive.minCopies is {ws.settings.min_copies}",
            )
        if row is None:
            report.add(path, "unindexed_ref", f"{ref.oid} has no inventory row")
        elif row.hex != ref.hex or row.size != ref.size:
            report.add(path, "oid_mismatch", f"the ref says {ref.oid}, the inventory says {row.oid}")
        if row is None or row.hex != ref.hex or row.size != ref.size or from_blob:
            fixes[path] = Row(path, ref.hex, ref.size, True, facts)
        elif behind:
            report.outdated.append(path)
            fixes[path] = Row(path, ref.hex, ref.size, True, {**row.archives, **behind})
    for path, row in sorted(rows.items()):
        if path in refs:
            continue
        if row.git:  # only with --from-blob: otherwise stale rows were reported as they were read
            report.add(path, "stale_row", STALE)
        else:
            _check_offloaded_row(ws, report, row, views)
    if verify:
        _read_and_hash(ws, report, views, {ref.hex: (path, ref) for path, (_, ref) in refs.items()}, sample)
    if orphans:
        referenced = hexes | referenced_in_history(ws) | hexes_in_every_worktree(ws.repo, "reconcile --orphans")
        ours, urls = roots(ws.repo, ["--all", "--reflog"]), set(remote_urls(ws.repo).values())
        for name, view in views.items():
            # An object no commit here names may be another repository's (core/model/claims.py).
            shared = len(other_repositories(ws.archive(name), ours, urls))
            also = (
                f"; {shared} other repositor{'y keeps' if shared == 1 else 'ies keep'} objects here" if shared else ""
            )
            for hex_digest, info in sorted(view.items()):
                if hex_digest not in referenced:
                    why = f"{info.size} bytes that no ref, commit, index entry or row names{also}"
                    report.add(info.key, "orphan", why, name)
    if from_blob:
        # Every managed ref, with what the archives hold now; gitignored files keep their rows.
        rebuilt = {p: r for p, r in rows.items() if not r.git}
        rebuilt.update({p: r for p, r in fixes.items() if r is not None})
        replace_inventory(ws.repo, rebuilt)
        report.fixed = sorted(rebuilt)
    elif fix_index and (fixes or report.stale_rows):
        # Rows behind are fixed with the rest; what could not be shown stays as it was.

        def stale(row: Row) -> bool:
            return row.git and row.path not in refs

        update_inventory(ws.repo, fixes, from_index=False, drop=stale)
        report.fixed = sorted({*fixes, *report.stale_paths})
        report.fixed_omitted = report.stale_rows - len(report.stale_paths)
    return report


STALE = "the inventory has a row, git has no managed file there"


def _read_and_hash(
    ws: Workspace,
    report: ReconcileReport,
    views: dict[str, dict[str, ObjectInfo]],
    wanted: dict[str, tuple[str, Ref]],
    sample: float,
) -> None:
    """--verify: read back the archives' copies of the managed objects (all, or a random `sample`
    percent of each archive's) and hash them, as restic's `check --read-data-subset` does:
    what finds bit rot and silent overwrites that sizes and etags cannot."""
    for name, view in views.items():
        held = sorted(h for h in view if h in wanted and view[h].size == wanted[h][1].size)
        count = len(held) if sample >= 100 else min(len(held), math.ceil(len(held) * sample / 100))
        chosen = held if count == len(held) else random.sample(held, count)
        archive = ws.archive(name)

        def check(hex_digest: str, archive: Archive = archive) -> tuple[str, Verification]:
            _, ref = wanted[hex_digest]
            return hex_digest, verify_copy(archive, ref, read_into=ws.cache.tmp, read_always=True)

        with ThreadPoolExecutor(max_workers=max(1, min(ws.settings.concurrency, len(chosen)))) as pool:
            for hex_digest, found in pool.map(check, chosen):
                report.read_back += 1
                path, ref = wanted[hex_digest]
                if found.verdict is Verdict.DIFFERENT:
                    report.add(path, "corrupt_in_archive", f"{ref.oid}: {found.how}", name)
                elif not found.ok:
                    report.add(path, "archive_unreachable", f"{ref.oid}: {found.how}", name)


def referenced_in_history(ws: Workspace) -> set[str]:
    """Every object a ref names anywhere: every commit reachable from any ref (branches, tags,
    remote-tracking refs, the stash) or from a reflog, and the index."""
    found = refs_in_history(ws.repo, ["--all", "--reflog", "--indexed-objects"])
    return {ref.hex for _, ref in found}


def _rows_to_check(ws: Workspace, refs: dict[str, tuple[ManagedFile, Ref]], report: ReconcileReport) -> dict[str, Row]:
    """The rows of managed files and of files git does not hold, read a row at a time; a row of
    neither is stale, reported as it is read and not kept (a hostile inventory may hold millions)."""
    rows: dict[str, Row] = {}
    unversioned = 0
    for row in iter_worktree_rows(ws.repo):
        if row.path in refs:
            rows[row.path] = row
        elif not row.git:
            unversioned += 1
            check_unversioned_count(unversioned)
            rows[row.path] = row
        else:
            report.stale_rows += 1
            report.checked_paths += 1
            report.add(row.path, "stale_row", STALE)
            if len(report.stale_paths) < MAX_FINDINGS:
                report.stale_paths.append(row.path)
    return rows


def _check_offloaded_row(
    ws: Workspace, report: ReconcileReport, row: Row, views: dict[str, dict[str, ObjectInfo]]
) -> None:
    """A gitignored file's row is its only record: its object must be in the archives."""
    for name, view in views.items():
        info = view.get(row.hex)
        if info is None:
            file = ws.repo.root / row.path
            have = ws.cache.has(row.hex, row.size) or (
                file.is_file() and not file.is_symlink() and sha256_file(file) == (row.hex, row.size)
            )
            kind = "pending_upload" if have else "missing_in_archive"
            report.add(row.path, kind, f"{row.oid} (not in git: the row is its only record)", name)
        elif info.size != row.size:
            report.add(row.path, "size_drift", f"archive holds {info.size} bytes, the row says {row.size}", name)
