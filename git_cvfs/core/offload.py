"""offload: free disk by turning materialized files back into refs, only once the archive is proven.

Invariants 1 and 10: no user bytes are removed unless the primary archive (and
archive.minCopies archives in all) is shown, at that moment, to hold that exact
object: the file is re-hashed and must be the committed object, and each archive's
stored bytes are verified (remote/verify.py), never taken from records.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from git_cvfs.core.model.copies import CopyChecker
from git_cvfs.core.model.holdings import archives_holding
from git_cvfs.core.model.managed import ManagedFile, State, holding_committed_bytes, list_managed, list_unversioned
from git_cvfs.core.model.pathspecs import require_matches
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import pause_point
from git_cvfs.errors import ENVIRONMENT_HINTS, CvfsError
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.index_stat import patch_index_stat
from git_cvfs.local.worktree import replace_when_full, write_bytes
from git_cvfs.remote.archive import object_key


@dataclass
class OffloadItem:
    path: str
    size: int
    url: str
    done: bool = False
    refused: str | None = None
    hint: str | None = None  # the fix for why it was refused, when there is one
    registers: bool = False  # not managed before: registered and uploaded first, in the same step

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "size": self.size,
            "archive_url": self.url,
            "offloaded": self.done,
            "refused": self.refused,
            "registered": self.registers,
        }


@dataclass
class OffloadResult:
    dry_run: bool
    checked: str = "archives"  # what a dry run asked: "archives", or "records" (--offline)
    items: list[OffloadItem] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(i.size for i in self.items if (i.done or self.dry_run) and not i.refused)

    @property
    def ok(self) -> bool:
        return not any(i.refused for i in self.items)

    def to_json(self) -> dict[str, object]:
        key = "would_free" if self.dry_run else "freed"
        return {
            "dry_run": self.dry_run,
            "checked": self.checked,
            "ok": self.ok,
            key: self.freed,
            "files": [i.to_json() for i in self.items],
        }


def plan_budget(ws: Workspace, budget: int, *, keep: Collection[str] = ()) -> list[ManagedFile]:
    """Least recently used materialized files (by access time, else mtime) until the rest fit in
    budget; never one of the paths in keep."""
    files = [f for f in list_managed(ws) + list_unversioned(ws) if f.state is State.MATERIALIZED]
    total = sum(f.size for f in files)
    files = [f for f in files if f.path not in keep]

    def last_used(f: ManagedFile) -> float:
        st = os.stat(ws.repo.root / f.path)
        return max(st.st_atime, st.st_mtime)

    chosen = []
    for f in sorted(files, key=last_used):
        if total <= budget:
            break
        chosen.append(f)
        total -= f.size
    return chosen


def offload(
    ws: Workspace,
    pathspecs: Sequence[str],
    *,
    dry_run: bool,
    offline: bool = False,
    files: list[ManagedFile] | None = None,
) -> OffloadResult:
    """Replace materialized files by their refs. Each file is hashed, and enough archives (the
    primary, and archive.minCopies in all) must be shown to hold its object (core/model/copies.py)
    at that moment; then the file is replaced, if no process has it open for writing and it
    is still the file that was hashed. A dry run asks the archives whether they hold each
    object (offline: this machine's records, and says so), and changes nothing."""
    result = OffloadResult(dry_run, checked="records" if offline else "archives")
    base = ws.settings.primary.url.rstrip("/")
    todo: list[tuple[OffloadItem, ManagedFile]] = []
    fresh: list[str] = []
    if files is None:
        files = list_managed(ws, pathspecs) + list_unversioned(ws, pathspecs)
        fresh = not_yet_managed(ws, pathspecs, {f.path for f in files})
        require_matches(ws, pathspecs, [f.path for f in files] + fresh, "offload")
        if fresh and dry_run:
            _plan_registering(ws, fresh, result, base)
        elif fresh:
            files += _register_and_archive(ws, fresh, result, base)
    named = _named_files(ws, pathspecs)
    for f in files:
        if f.state is State.PLAIN and f.path in named:  # asked for by name: doing nothing is no success
            refused = OffloadItem(f.path, f.size, base, registers=False)
            refused.refused = "git holds its bytes (a plain blob, not a ref): there is nothing to free"
            refused.hint = (
                f"files below scope.minSize stay in git; a large one committed before it was tracked "
                f"becomes a ref with `git add --renormalize {f.path}` and a commit"
            )
            result.items.append(refused)
            continue
        if f.state in (State.REF, State.PLAIN, State.SPARSE):
            continue  # already offloaded, plain git content with nothing archived, or not in this checkout
        item = OffloadItem(
            f.path, f.size, f"{base}/{object_key(f.ref.hex)}" if f.ref else base, registers=f.path in fresh
        )
        result.items.append(item)
        if f.state is State.MODIFIED or f.ref is None:
            item.refused = "modified since it was added; commit it first (`git add` + `git commit`)"
        elif f.state is not State.MATERIALIZED:
            item.refused = f.problem or f"cannot offload a file in state {f.state.value}"
        else:
            todo.append((item, f))
    if not todo:
        return result
    if dry_run:
        _plan_against_archives(ws, todo, offline=offline)
        return result
    ws.require_trusted(["primary"])  # one error naming the location, before any file is looked at
    checker = CopyChecker(ws)
    refresh: dict[str, os.stat_result] = {}
    for item, f in todo:
        try:
            st = _offload_one(ws, checker, f)
        except CvfsError as exc:
            item.refused, item.hint = exc.message, exc.hint
            continue
        except OSError as exc:  # the machine's (a read-only directory): this file, not the rest
            item.refused, item.hint = exc.strerror or str(exc), ENVIRONMENT_HINTS.get(exc.errno or 0)
            continue
        item.done = True
        if f.ref and f.blob == git_blob_id(f.ref.encode()):
            refresh[f.path] = st
    patch_index_stat(ws.repo.index_file, ws.repo.root, refresh)
    return result


def _plain_paths(pathspecs: Sequence[str]) -> list[str]:
    """The pathspecs that are paths on disk, no magic and no wildcard (work_from_top has moved
    to the top, so they are from there)."""
    return [s for s in pathspecs if not s.startswith(":") and not set("*?[") & set(s) and os.path.lexists(s)]


def _named_files(ws: Workspace, pathspecs: Sequence[str]) -> set[str]:
    """The files the pathspecs name one by one (a path, not a directory), from the top."""
    root = ws.repo.root
    return {os.path.relpath(os.path.abspath(s), root) for s in _plain_paths(pathspecs) if not os.path.isdir(s)}


def not_yet_managed(ws: Workspace, pathspecs: Sequence[str], known: set[str]) -> list[str]:
    """Files the pathspecs name on disk that git does not track and no inventory row records
    (untracked or gitignored): offload registers and archives them first. A file named by a
    directory counts at or above its minSize; one named itself, always. Each must be where a
    tracked pattern puts data (filter=cvfs), or it is an error saying how to track it."""
    from git_cvfs.errors import UsageError
    from git_cvfs.local.git import split_z
    from git_cvfs.local.worktree import files_under

    root = ws.repo.root
    named = _plain_paths(pathspecs)
    if not named:
        return []
    exact = _named_files(ws, named)
    tracked = set(split_z(ws.repo.git("ls-files", "-z", "--full-name", "--", *named)))
    fresh = [
        p
        for p in files_under(root, named)
        if p not in known
        and p not in tracked
        and not (root / p).is_symlink()
        and (p in exact or (root / p).stat().st_size >= ws.settings.min_size_for(p))
    ]
    if not fresh:
        return []
    filters = ws.repo.attr_values("filter", fresh)
    outside = [p for p in fresh if filters.get(p) != "cvfs"]
    if outside:
        parent = os.path.dirname(outside[0]) or "."
        raise UsageError(
            f"{outside[0]} is not managed, and no tracked pattern covers it"
            + (f" (nor {len(outside) - 1} more)" if len(outside) > 1 else ""),
            hint=f"track its directory first: git cvfs track '{parent}/**'",
        )
    return fresh


def _plan_registering(ws: Workspace, fresh: Sequence[str], result: OffloadResult, base: str) -> None:
    """A dry run: each file hashed (nothing written), to show the object it would become."""
    for path in fresh:
        hex_digest, size = sha256_file(ws.repo.root / path)
        result.items.append(OffloadItem(path, size, f"{base}/{object_key(hex_digest)}", registers=True))


def _register_and_archive(ws: Workspace, fresh: Sequence[str], result: OffloadResult, base: str) -> list[ManagedFile]:
    """Register the files (hashed into the cache, a `git: false` row each), archive their
    objects (every archive, verified), and record where: then they are managed files offload
    frees like any other. Those no archive took are refused here, registered but kept."""
    from git_cvfs.core.push import archive_refs, record_unversioned
    from git_cvfs.core.register import register
    from git_cvfs.format.ref import Ref

    ws.require_trusted(["primary"])
    rows = register(ws, [str(ws.repo.root / p) for p in fresh])
    outcome = archive_refs(ws, [(r.path, Ref(r.hex, r.size)) for r in rows], trust_log=False)
    record_unversioned(ws, rows, outcome.facts)
    failed = {**outcome.unreachable, **outcome.missing}
    for row in rows:
        if row.hex in failed:
            item = OffloadItem(row.path, row.size, f"{base}/{object_key(row.hex)}", registers=True)
            item.refused = f"registered, but not archived: {failed[row.hex]}"
            item.hint = "run `git cvfs push` once the archive is reachable, then offload it"
            result.items.append(item)
    archived = [row.path for row in rows if row.hex not in failed]
    managed = list_unversioned(ws, archived) if archived else []
    return [f for f in managed if f.path in set(archived)]


def _plan_against_archives(ws: Workspace, todo: list[tuple[OffloadItem, ManagedFile]], *, offline: bool) -> None:
    """What a real run would refuse: a file whose bytes are not its committed object (git's
    index stat vouches for a file unchanged since it was written; any other is hashed, as the
    real run hashes every one), and one short of archived copies: the archives are asked, in
    one listing or a HEAD per object each (offline: this machine's records of verified uploads)."""
    vouched, verified = holding_committed_bytes(ws, [(f.path, f.ref) for _, f in todo if f.ref])
    holdings = archives_holding(ws, {f.ref.hex: f.ref.size for _, f in todo if f.ref}, offline=offline)
    for item, f in todo:
        assert f.ref is not None
        if f.path not in vouched and f.path not in verified:
            item.refused = "its bytes are not the committed object (modified since it was added); commit it first"
            continue
        held = holdings.holders.get(f.ref.hex, set())
        if "primary" in holdings.errors:
            item.refused = f"the primary archive could not be asked: {holdings.errors['primary']}"
            continue
        if "primary" not in held:
            item.refused = "the primary archive does not hold it; run `git cvfs push` first"
        elif len(held) < ws.settings.min_copies:
            item.refused = (
                f"archive.minCopies is {ws.settings.min_copies} and {len(held)} archive(s) hold it; "
                "run `git cvfs push` first"
            )


def _offload_one(ws: Workspace, checker: CopyChecker, f: ManagedFile) -> os.stat_result:
    """Replace one file by its ref; the stat of the ref file written."""
    ref = f.ref
    assert ref is not None
    path = ws.repo.root / f.path
    before = os.lstat(path)
    if sha256_file(path) != (ref.hex, ref.size):
        raise CvfsError("its bytes are not the committed object (modified since it was added); commit it first")
    copies = checker.copies(ref, local=path)
    if not copies.enough:
        raise CvfsError(copies.why_not())
    pause_point("offload:before-replace")
    # The file must still be what was hashed at the instant it is replaced, and nobody may be writing it.
    try:
        st = write_bytes(ws.repo.root, f.path, ref.encode(), expect_stat=before)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # A full disk has no room for the ref: what offload is for. The archives hold the bytes
        # (shown just now), so the file goes first, then its ref is written.
        st = replace_when_full(ws.repo.root, f.path, ref.encode(), expect_stat=before)
    if not ws.settings.cache_keep:
        ws.cache.remove(ref.hex)  # enough archives hold it, shown just now
    return st
