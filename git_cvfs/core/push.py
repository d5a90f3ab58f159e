"""Get objects into the archives: `git cvfs push`, and the uploads of pre-commit and pre-push."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from git_cvfs.core.model.claims import claim
from git_cvfs.core.model.refscan import head_and_index_blobs, refs_in_history, scan_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import crash_point
from git_cvfs.errors import ArchiveError, CvfsError, ObjectMissingError, UsageError
from git_cvfs.format.inventory import Row
from git_cvfs.format.ref import Ref
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.index_store import unversioned_rows, update_inventory
from git_cvfs.remote.archive import GC_EPOCH_KEY, Archive, object_key
from git_cvfs.remote.transfer import Outcome, UnverifiedCopyError, Upload, download_many, unique, upload_many
from git_cvfs.remote.verify import verify_copy


@dataclass
class ArchiveOutcome:
    facts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # hex -> archive -> {key, etag}
    missing: dict[str, str] = field(default_factory=dict)  # hex -> why: in no cache and no archive
    unreachable: dict[str, str] = field(default_factory=dict)  # hex -> why: archive failed
    uploaded: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreachable


def archive_refs(
    ws: Workspace,
    found: Sequence[tuple[str, Ref]],
    *,
    names: Sequence[str] | None = None,
    trust_log: bool = True,
    check_epoch: bool = True,
) -> ArchiveOutcome:
    """Make sure each archive holds each object.

    With trust_log (the hooks), objects this machine already saw in an archive cost
    no request; `git cvfs push` asks the archive about every object instead. With
    check_epoch, the log is trusted only while the archive's gc epoch marker is the one it
    was written under (one HEAD): since `git cvfs gc`, the archive may have lost what this
    machine once verified, and a commit's rows and the lean cache's drops rest on the answer.
    """
    outcome = ArchiveOutcome()
    refs = unique(ref for _, ref in found)
    for name in names or ws.archive_names:
        log = ArchivedLog(ws.repo.cvfs_dir, ws.settings.archives[name])
        if trust_log and check_epoch and refs:
            try:
                marker = ws.archive(name).head(GC_EPOCH_KEY)
            except ArchiveError as exc:
                for ref in refs:
                    outcome.unreachable[ref.hex] = exc.message
                continue
            log.adopt_epoch(marker.etag if marker is not None else "")
            claim(ws, name, ws.archive(name))  # the archive answered: record this repository there
            claimed = True
        else:
            claimed = False
        verified = log.known()
        known = verified if trust_log else {}
        todo = []
        for ref in refs:
            if ref.hex in known:
                outcome.facts.setdefault(ref.hex, {})[name] = {"etag": known[ref.hex], "key": object_key(ref.hex)}
                outcome.skipped += 1
            else:
                todo.append(ref)
        if not todo:
            continue
        # Ask the archive first: only objects it lacks and the cache lacks are worth
        # reading back from the work tree or another archive (with the lean cache,
        # that is most of them, and most are usually archived already).
        try:
            archive = ws.archive(name)
            send = partial(upload_many, archive, ws.cache, concurrency=ws.settings.concurrency, verified_etags=verified)
            result = send(todo)
            lacking = [r for r in todo if isinstance(result.failed.get(r.hex), ObjectMissingError)]
            if lacking:
                _fill_cache_from_worktree(ws, found, lacking)
                _fill_cache_from_other_archives(ws, name, lacking)
                again = send(lacking)
                for ref in lacking:
                    del result.failed[ref.hex]
                result.done.update(again.done)
                result.failed.update(again.failed)
                _verify_by_reading(ws, archive, todo, result)
        except ArchiveError as exc:
            for ref in todo:
                outcome.unreachable[ref.hex] = exc.message
            continue
        crash_point("push:after-upload")
        seen = {}
        for hex_digest, upload in result.done.items():
            outcome.facts.setdefault(hex_digest, {})[name] = {"etag": upload.info.etag, "key": upload.info.key}
            seen[hex_digest] = upload.info.etag
            if upload.sent:
                outcome.uploaded += 1
            else:
                outcome.skipped += 1
        log.record(seen)
        if seen and not claimed:  # the archive took or showed objects: record this repository there
            claim(ws, name, archive)
        for hex_digest, failure in result.failed.items():
            missing = isinstance(failure, ObjectMissingError) and not isinstance(failure, UnverifiedCopyError)
            (outcome.missing if missing else outcome.unreachable)[hex_digest] = failure.message
    return outcome


def _verify_by_reading(ws: Workspace, archive: Archive, refs: Sequence[Ref], result: Outcome[Upload]) -> None:
    """Objects the archive holds but no digest at hand vouches for, and no copy here can be
    compared with: read the archive's copy back and hash it (a download, so only for these)."""
    for ref in refs:
        if isinstance(result.failed.get(ref.hex), UnverifiedCopyError):
            found = verify_copy(archive, ref, read_into=ws.cache.tmp)
            if found.ok and found.info is not None:
                del result.failed[ref.hex]
                result.done[ref.hex] = Upload(found.info, sent=False)


def _fill_cache_from_worktree(ws: Workspace, found: Sequence[tuple[str, Ref]], refs: Sequence[Ref]) -> None:
    """With the lean cache, an object's only local copy may be its materialized file: take it back
    into the cache, verified against the oid while it is copied, so it can be uploaded."""
    wanted = {r.hex for r in refs if not ws.cache.has(r.hex, r.size)}
    for path, ref in found:
        if ref.hex not in wanted:
            continue
        file = ws.repo.root / path
        try:
            if file.is_symlink() or file.stat().st_size != ref.size:
                continue
            with open(file, "rb") as f:
                ws.cache.put_stream(iter(lambda: f.read(CHUNK), b""), expect_hex=ref.hex)
        except (CvfsError, OSError):
            continue  # changed since it was committed, or unreadable: not this object
        wanted.discard(ref.hex)


def _fill_cache_from_other_archives(ws: Workspace, target: str, refs: Sequence[Ref]) -> None:
    """Objects this machine lacks may still be in another archive: fetch them (verified) to copy across."""
    absent = [r for r in refs if not ws.cache.has(r.hex, r.size)]
    sources = [n for n in ws.archive_names if n != target]
    if not absent or not sources:
        return
    with contextlib.suppress(CvfsError):  # what stays missing is reported by the upload
        download_many([ws.archive(n) for n in sources], ws.cache, absent, concurrency=ws.settings.concurrency)


def refs_in_tree_and_index(ws: Workspace) -> list[tuple[str, Ref]]:
    return scan_blobs(ws.repo, head_and_index_blobs(ws.repo)).refs


@dataclass
class PushResult:
    outcome: ArchiveOutcome
    paths: dict[str, str]  # hex -> one path that uses it, for messages

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.outcome.ok,
            "uploaded": self.outcome.uploaded,
            "already_archived": self.outcome.skipped,
            "missing": {self.paths.get(h, h): m for h, m in self.outcome.missing.items()},
            "failed": {self.paths.get(h, h): m for h, m in self.outcome.unreachable.items()},
        }


def push(ws: Workspace, *, all_history: bool, archive: str | None) -> PushResult:
    if archive is not None and archive not in ws.settings.archives:
        raise UsageError(f"no archive named {archive!r}", hint=f"configured: {', '.join(ws.archive_names)}")
    ws.require_trusted([archive] if archive else None)
    found = refs_in_history(ws.repo, ["--all"]) if all_history else refs_in_tree_and_index(ws)
    unversioned = list(unversioned_rows(ws.repo))
    found += [(row.path, Ref(row.hex, row.size)) for row in unversioned]
    paths = {ref.hex: path for path, ref in found}
    outcome = archive_refs(ws, found, names=[archive] if archive else None, trust_log=False)
    record_unversioned(ws, unversioned, outcome.facts)
    from git_cvfs.core.model.lean_cache import drop_cache_copies  # here: the pre-push hook need not import it

    in_primary = {h: True for h, facts in outcome.facts.items() if "primary" in facts}
    drop_cache_copies(ws, [(r.path, Ref(r.hex, r.size)) for r in unversioned], in_primary)
    return PushResult(outcome, paths)


def record_unversioned(ws: Workspace, rows: Sequence[Row], facts: dict[str, dict[str, dict[str, str]]]) -> None:
    """A gitignored file's row is its only record: write down where its bytes now are."""
    updates: dict[str, Row | None] = {}
    for row in rows:
        merged = {**row.archives, **facts.get(row.hex, {})}
        if merged != row.archives:
            updates[row.path] = Row(row.path, row.hex, row.size, False, merged)
    if updates:
        update_inventory(ws.repo, updates, from_index=False)


def raise_for_missing(result: PushResult, what: str) -> None:
    if result.outcome.missing:
        lines = [f"{result.paths.get(h, h)}: {m}" for h, m in sorted(result.outcome.missing.items())]
        raise CvfsError(
            f"{what}: {len(lines)} object(s) are in no archive and not in the local cache:\n  " + "\n  ".join(lines),
            hint="push from a machine that has these files, or restore them with `git cvfs ingest`",
        )
