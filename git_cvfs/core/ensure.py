"""Materialize refs in the work tree: ensure, fetch, preflight, and the post-checkout hook."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar, cast

from git_cvfs.core.model.holdings import recorded_in_primary
from git_cvfs.core.model.lean_cache import drop_cache_copies
from git_cvfs.core.model.managed import ManagedFile, State, holding_committed_bytes, list_managed, list_unversioned
from git_cvfs.core.model.pathspecs import require_matches, selected
from git_cvfs.core.model.refscan import refs_in_history
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import pause_point
from git_cvfs.errors import (
    ENVIRONMENT_HINTS,
    ArchiveError,
    ChangedUnderfootError,
    CvfsError,
    IntegrityError,
    UsageError,
)
from git_cvfs.format.ref import Ref
from git_cvfs.local import writeback
from git_cvfs.local.cache import sha256_file
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.index_stat import patch_index_stat
from git_cvfs.local.journal import take_paths
from git_cvfs.local.locks import file_lock
from git_cvfs.local.worktree import (
    PreparedWrite,
    abandon_write,
    finish_write,
    place_file,
    prepare_replace_file,
    prepare_replace_file_fetched,
    replace_file,
    replace_file_fetched,
)
from git_cvfs.output import Progress
from git_cvfs.remote.archive import Archive
from git_cvfs.remote.resumable import RESUMABLE_FROM, fetch_resumable, partial_path
from git_cvfs.remote.transfer import download_many, fetch_verified

if TYPE_CHECKING:
    from git_cvfs.core.budget import BudgetResult


_T = TypeVar("_T")

MISSING_REASON = "not in the work tree (deleted, or a checkout that did not finish)"


@dataclass
class EnsureResult:
    materialized: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    still_refs: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    changed_underfoot: list[str] = field(default_factory=list)  # among failed: changed while being written
    sparse: list[str] = field(default_factory=list)  # outside the sparse checkout: left out of the work tree
    missing: list[str] = field(default_factory=list)  # in git's index, gone from the work tree (deleted)
    hints: dict[str, str] = field(default_factory=dict)  # among failed: the fix, where the cause names one
    budget: BudgetResult | None = None  # what worktree.budget offloaded afterwards, when set

    @property
    def ok(self) -> bool:
        return not self.failed and not self.still_refs

    def fail(self, path: str, exc: CvfsError) -> None:
        self.failed[path] = exc.message
        if exc.hint:
            self.hints[path] = exc.hint

    def cannot_write(self, path: str, exc: OSError) -> str:
        """Why path could not be written, its fix noted where the machine's error names one."""
        if hint := ENVIRONMENT_HINTS.get(exc.errno or 0):
            self.hints[path] = hint
        return f"cannot write: {exc.strerror or exc}"

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "materialized": self.materialized,
            "already_materialized": self.already,
            "still_refs": self.still_refs,
            "failed": self.failed,
            "sparse": self.sparse,
            "missing": self.missing,
            **({"budget": self.budget.to_json()} if self.budget is not None else {}),
        }


def materialize_lock(ws: Workspace) -> contextlib.AbstractContextManager[None]:
    """One materializing process per work tree: a second ensure (or hook) waits, then finds the work done."""
    return file_lock(
        ws.repo.git_dir / "cvfs" / "locks" / "materialize.lock",
        what="materializing files in this work tree",
        hint="another `git cvfs ensure` or checkout hook is running here; wait for it, then retry",
    )


def ensure(
    ws: Workspace, pathspecs: Sequence[str], *, check_only: bool = False, source: str | None = None
) -> EnsureResult:
    if source is not None and source not in ws.settings.archives:
        raise UsageError(f"no archive named {source!r}", hint=f"configured: {', '.join(ws.archive_names)}")
    if check_only:
        return _ensure(ws, pathspecs, check_only=True)
    with materialize_lock(ws):
        result = _ensure(ws, pathspecs, check_only=False, source=source)
        if ws.settings.worktree_budget is not None:
            from git_cvfs.core.budget import keep_within_budget

            asked = set(result.materialized) | set(result.already)
            result.budget = keep_within_budget(ws, keep=asked)
        return result


def _ensure(ws: Workspace, pathspecs: Sequence[str], *, check_only: bool, source: str | None = None) -> EnsureResult:
    files = list_managed(ws, pathspecs) + list_unversioned(ws, pathspecs)
    require_matches(ws, pathspecs, (f.path for f in files), "preflight" if check_only else "ensure")
    result = EnsureResult()
    todo: list[ManagedFile] = []
    for f in files:
        if f.state is State.SPARSE:
            result.sparse.append(f.path)
            if pathspecs:  # named, and not here: not ready, whatever the reason
                result.failed[f.path] = "outside the sparse checkout (`git sparse-checkout add` its directory)"
        elif f.state is State.REF or (f.state is State.MISSING and not f.blob):  # a gitignored file to bring back
            todo.append(f)
        elif f.state is State.MISSING:  # deleted, or left out by a checkout that did not finish
            result.missing.append(f.path)
            if pathspecs:  # named, and not here: not ready (a deletion is the user's to undo)
                result.failed[f.path] = MISSING_REASON
        elif f.state is State.INVALID:
            result.failed[f.path] = f.problem or "invalid ref"
        elif f.state in (State.MATERIALIZED, State.MODIFIED, State.PLAIN):
            result.already.append(f.path)
    if check_only:
        result.still_refs = [f.path for f in todo]
        return result
    materialize(ws, _in_wanted_order(ws, todo, pathspecs), result, source=source)
    _reappeared(ws, result)
    # Complete: every file still a ref when ensure is done (its download failed, it changed
    # underfoot), not only those a check would list.
    done = set(result.materialized) | set(result.changed_underfoot)  # the latter hold what changed them
    result.still_refs = [f.path for f in todo if f.path not in done]
    _refresh_stale_index_entries(ws, [f for f in files if f.state is State.MATERIALIZED])
    return result


def _reappeared(ws: Workspace, result: EnsureResult) -> None:
    """A file missing when ensure listed it and present when it is done was being written by
    someone else (git checkout unlinks a file before it writes the new one): it changed while
    ensure ran, it was not deleted, so running ensure again is the fix, not restoring it; and
    the run did not see it through, a failure even when not named."""
    for path in [p for p in result.missing if os.path.lexists(os.path.join(ws.repo.root, p))]:
        result.missing.remove(path)
        result.changed_underfoot.append(path)
        result.failed[path] = "changed while ensure ran (a checkout was writing it)"


def _in_wanted_order(ws: Workspace, files: list[ManagedFile], pathspecs: Sequence[str]) -> list[ManagedFile]:
    """The files a user named one by one first, then small before large: what is waited for
    soonest arrives first, and many small files are not stuck behind one large one."""
    named = set()
    for spec in pathspecs:
        if not spec.startswith(":"):
            named.add(Path(os.path.relpath(os.path.abspath(spec), ws.repo.root)).as_posix())
    return sorted(files, key=lambda f: (f.path not in named, f.size, f.path))


def _refresh_stale_index_entries(ws: Workspace, files: Sequence[ManagedFile]) -> None:
    """Materialized files git's index does not vouch for (an earlier run was killed before it
    updated the index, or the index was locked): verify the bytes, then refresh the entry, so
    running ensure again finishes the job and `git status` is clean."""
    candidates = [(f.path, f.ref) for f in files if f.ref is not None and f.blob == git_blob_id(f.ref.encode())]
    _, verified = holding_committed_bytes(ws, candidates)
    patch_index_stat(ws.repo.index_file, ws.repo.root, verified)


def materialize(
    ws: Workspace, files: Sequence[ManagedFile], result: EnsureResult, *, source: str | None = None
) -> None:
    """Plan, download, write, settle: each file written atomically and verified, then git's
    index told about the files it holds (the stat each had when it was put in place).

    What the cache lacks is downloaded into it first, then copied into the work tree, except
    while the cache is lean: it would drop the copy again as soon as the file is written, so
    an object only one of the files needs goes straight from the archive into the work tree
    (a temporary file beside it, hashed before the rename). That is one write of the bytes
    and one fsync a file instead of two, no delete, and no second copy on disk meanwhile.
    """
    if not files:
        return
    plan = _plan(ws, files, source)
    failed = _download(ws, plan)
    pause_point("ensure:before-write")
    ready = []
    for f in files:
        ref = f.target
        assert ref is not None
        if ref.hex in failed:
            result.fail(f.path, failed[ref.hex])
        else:
            ready.append(f)
    written = _write_files(ws, plan, ready, result)
    pause_point("ensure:before-index")
    _settle_index(ws, written)


@dataclass
class _Plan:
    direct: set[str]  # objects that go straight from an archive into the work tree
    through_cache: list[Ref]  # objects written from the cache (downloaded into it first if missing)
    archives: Sequence[Archive] = ()  # the approved archives, asked in order; empty when none is needed


def _plan(ws: Workspace, files: Sequence[ManagedFile], source: str | None = None) -> _Plan:
    uses = Counter(f.target.hex for f in files if f.target is not None)
    direct = {
        ref.hex
        for f in files
        if (ref := f.target) is not None
        and not ws.settings.cache_keep
        and uses[ref.hex] == 1
        and not ws.cache.has(ref.hex, ref.size)
    }
    through_cache = [f.target for f in files if f.target is not None and f.target.hex not in direct]
    plan = _Plan(direct, through_cache)
    if direct or any(not ws.cache.has(r.hex, r.size) for r in through_cache):
        # None approved on this machine: the error names the location and the fix.
        plan.archives = [ws.archive(source)] if source else ws.archives
    return plan


def _download(ws: Workspace, plan: _Plan) -> dict[str, CvfsError]:
    """Fetch into the cache what goes through it and is missing; oid hex -> why, for each failure."""
    if not plan.archives:
        return {}
    try:
        outcome = download_many(plan.archives, ws.cache, plan.through_cache, concurrency=ws.settings.concurrency)
    except ArchiveError as exc:
        failed: dict[str, CvfsError] = dict.fromkeys(plan.direct, exc)
        return failed | dict.fromkeys((ref.hex for ref in plan.through_cache), exc)
    return dict(outcome.failed)


# Files below this are flushed in batches: each writer leaves its file written beside the
# target, and once _FLUSH_BATCH wait, whichever writer made the batch full flushes them one
# after the other and puts each in place. The first flush's journal commit carries the rest,
# where a flush per file cost a commit each. Larger files are flushed one by one: their bytes,
# not the commit, are the cost. At most _MOST_OPEN wait or are being flushed at a time (each
# holds two descriptors); past that, a writer flushes its own file at once.
_FLUSH_BELOW = 1 << 20
_FLUSH_BATCH = 16
_MOST_OPEN = 2 * _FLUSH_BATCH


class _Batches:
    """Prepared writes of small files, finished (flushed, checked, renamed) in batches."""

    def __init__(self, finish: Callable[[int, ManagedFile, PreparedWrite], None]) -> None:
        self._finish = finish
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, ManagedFile, PreparedWrite]] = []
        self._open = 0  # waiting, or in a batch being flushed

    def add(self, i: int, f: ManagedFile, prepared: PreparedWrite) -> None:
        writeback.start_all(prepared.out)  # to disk now: the batch's first flush then finds it written
        with self._lock:
            if self._open >= _MOST_OPEN:
                batch, counted = [(i, f, prepared)], 0
            else:
                self._open += 1
                self._waiting.append((i, f, prepared))
                if len(self._waiting) < _FLUSH_BATCH:
                    return
                batch, self._waiting = self._waiting, []
                counted = len(batch)
        self._flush(batch, counted)

    def drain(self) -> None:
        """Finish what still waits (the writers are done)."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        self._flush(batch, len(batch))

    def abandon(self) -> None:
        """Remove what no flush reached (an interrupt); the targets stay as they are."""
        with self._lock:
            batch, self._waiting = self._waiting, []
        for _, _, prepared in batch:
            abandon_write(prepared)

    def _flush(self, batch: list[tuple[int, ManagedFile, PreparedWrite]], counted: int) -> None:
        try:
            for n, (i, f, prepared) in enumerate(batch):
                try:
                    self._finish(i, f, prepared)
                except BaseException:  # an interrupt: the rest of the batch is removed, the targets kept
                    for _, _, rest in batch[n + 1 :]:
                        abandon_write(rest)
                    raise
        finally:
            with self._lock:
                self._open -= counted


def _from_this_machine(plan: _Plan) -> bool:
    """Whether every file's bytes come from this machine (the cache, a directory archive), so
    writing them is system calls, not waiting on a cloud archive's answers."""
    return not plan.direct or all(archive.capabilities.local for archive in plan.archives)


def _writers(ws: Workspace, count: int, *, local: bool) -> int:
    """Threads for writing the files: transfer.concurrency where they wait on a cloud archive;
    no more than the cores where the bytes are on this machine. That work is system calls that
    each hand Python's lock to another thread: eight threads on two cores spent more time
    switching than writing (an ensure of 10,000 small files from the directory archive, flushes
    batched: 9.4 s with eight, 7.8 s with two)."""
    limit = min(ws.settings.concurrency, os.cpu_count() or 1) if local else ws.settings.concurrency
    return max(1, min(limit, count))


def _write_files(
    ws: Workspace, plan: _Plan, ready: Sequence[ManagedFile], result: EnsureResult
) -> dict[str, tuple[Ref, os.stat_result]]:
    """Write each file in parallel; path -> its stat when put in place, for those whose index
    entry holds their very ref (only those are now clean in git's eyes)."""
    progress = Progress("Materializing files", len(ready), sum(f.target.size for f in ready if f.target))
    outcomes: list[tuple[int, ManagedFile, os.stat_result | str]] = []
    lock = threading.Lock()

    def attempt(f: ManagedFile, step: Callable[[], _T]) -> _T | str:
        """What step made, or why it failed."""
        try:
            return step()
        except ChangedUnderfootError as exc:
            result.changed_underfoot.append(f.path)
            return exc.message
        except CvfsError as exc:
            return exc.message
        except OSError as exc:
            return result.cannot_write(f.path, exc)

    def record(i: int, f: ManagedFile, outcome: os.stat_result | str) -> None:
        with lock:
            outcomes.append((i, f, outcome))
        progress.advance(1, f.size)

    def finish(i: int, f: ManagedFile, prepared: PreparedWrite) -> None:
        record(i, f, attempt(f, partial(finish_write, prepared)))

    batches = _Batches(finish)
    # From a cloud archive, each writer flushes its own file, as it waits on the archive anyway
    # (and sixteen writers' batches would hold many descriptors).
    local = _from_this_machine(plan)

    def write(item: tuple[int, ManagedFile]) -> None:
        i, f = item
        prepared = attempt(f, partial(_prepare_one, ws, plan, f))
        if not isinstance(prepared, PreparedWrite):  # a failure, or a large file already in place
            record(i, f, prepared)
        elif f.size >= _FLUSH_BELOW or not local:
            finish(i, f, prepared)
        else:
            batches.add(i, f, prepared)

    try:
        with ThreadPoolExecutor(max_workers=_writers(ws, len(ready), local=local)) as pool:
            list(pool.map(write, enumerate(ready)))
        batches.drain()
    finally:
        batches.abandon()
    progress.finish()
    written: dict[str, tuple[Ref, os.stat_result]] = {}
    for _, f, outcome in sorted(outcomes, key=lambda o: o[0]):
        if isinstance(outcome, str):
            result.failed[f.path] = outcome
            continue
        result.materialized.append(f.path)
        if f.target is not None and f.blob == git_blob_id(f.target.encode()):
            written[f.path] = (f.target, outcome)
    return written


def _prepare_one(ws: Workspace, plan: _Plan, f: ManagedFile) -> PreparedWrite | os.stat_result:
    """One file's object written beside it, to be flushed and put in place by finish_write; or,
    for a large object fetched resumably, already in place (its stat)."""
    ref = f.target
    assert ref is not None
    missing = f.state is State.MISSING
    expect_head = None if missing else ref.encode()
    if ref.hex not in plan.direct:
        return prepare_replace_file(
            ws.repo.root, f.path, ws.cache.object_path(ref.hex), expect_head=expect_head, create_dirs=missing
        )
    attempt: Callable[[Archive, str], PreparedWrite | os.stat_result | None] = partial(
        _fetch_into_tree, ws, f.path, ref, expect_head=expect_head, create_dirs=missing
    )
    # (mypy joins the two kinds to object when it solves fetch_verified's R | None)
    return cast("PreparedWrite | os.stat_result", fetch_verified(plan.archives, ref, attempt))


def _fetch_into_tree(
    ws: Workspace, path: str, ref: Ref, archive: Archive, key: str, *, expect_head: bytes | None, create_dirs: bool
) -> PreparedWrite | os.stat_result | None:
    """fetch_verified's attempt: the file written from this archive beside its target, or None
    when the bytes did not match (the work tree is untouched then). A large object is fetched
    resumably into the cache's tmp dir (a killed run's ranges are kept) and moved into place
    once verified (its stat)."""
    root = ws.repo.root
    if ref.size >= RESUMABLE_FROM:
        ready = partial_path(ws.cache.tmp, ref)
        if not fetch_resumable(archive, ref, ready, concurrency=ws.settings.concurrency):
            return None
        return place_file(root, path, ready, expect_head=expect_head, create_dirs=create_dirs)
    try:
        return prepare_replace_file_fetched(
            root,
            path,
            lambda out: archive.download_to(key, out, ref.size),
            ref.hex,
            ref.size,
            expect_head=expect_head,
            create_dirs=create_dirs,
        )
    except IntegrityError:
        return None


def _settle_index(ws: Workspace, written: dict[str, tuple[Ref, os.stat_result]]) -> None:
    """Tell git's index about the files written (unless changed since), then drop the cache
    copies the work tree now holds (files written straight from an archive left none)."""
    patch_index_stat(ws.repo.index_file, ws.repo.root, {path: st for path, (_, st) in written.items()})
    cached = [(path, ref) for path, (ref, _) in written.items() if ws.cache.has(ref.hex, ref.size)]
    if cached:
        drop_cache_copies(ws, cached, recorded_in_primary(ws, (ref.hex for _, ref in cached)))


def take_pending(ws: Workspace) -> list[str]:
    """Claim the paths the filter process left for out-of-band writing (each list once)."""
    return take_paths(ws.pending_dir)


def fetch(ws: Workspace, pathspecs: Sequence[str], *, revs: Sequence[str] = (), history: bool = False) -> EnsureResult:
    """Download objects into the cache without touching the work tree: of the managed files
    here (pathspecs), of the trees of other revisions (revs), or of all history."""
    result = EnsureResult()
    wanted: dict[str, Ref] = {}
    if history:
        wanted = {f"{ref.hex[:12]}:{path}": ref for path, ref in refs_in_history(ws.repo, ["--all"])}
    elif revs:
        from git_cvfs.core.model.revision import RevisionTree

        picked = set()
        for rev in revs:
            tree = RevisionTree(ws.repo, rev)  # a revision that does not exist is an error, named
            for path in selected(ws, pathspecs, tree.managed):
                wanted[f"{rev}:{path}"] = tree.managed[path]
                picked.add(path)
        require_matches(ws, pathspecs, picked, "fetch")  # a path in none of them: a mistake, said
    else:
        files = list_managed(ws, pathspecs)
        try:
            require_matches(ws, pathspecs, (f.path for f in files), "fetch")
        except CvfsError as exc:
            raise _maybe_a_revision(ws, pathspecs, exc) from None
        for f in files:
            if f.target is not None and f.state is not State.PLAIN:
                wanted[f.path] = f.target
    missing = [ref for ref in wanted.values() if not ws.cache.has(ref.hex, ref.size)]
    archives = ws.archives if missing else []
    outcome = download_many(archives, ws.cache, missing, concurrency=ws.settings.concurrency)
    for path, ref in wanted.items():
        if ref.hex in outcome.failed:
            result.fail(path, outcome.failed[ref.hex])
        else:
            result.materialized.append(path)
    return result


def _maybe_a_revision(ws: Workspace, pathspecs: Sequence[str], exc: CvfsError) -> CvfsError:
    """`git cvfs fetch main` names a branch, not a path: say how to fetch a revision."""
    from git_cvfs.core.model.revision import resolve_commit

    for spec in pathspecs:
        if (ws.repo.root / spec).exists():
            continue
        try:
            resolve_commit(ws.repo, spec)
        except CvfsError:
            continue
        return CvfsError(
            f"{spec!r} is a revision, not a path git-cvfs manages",
            hint=f"to fill the cache for that revision: git cvfs fetch --rev {spec}",
        )
    return exc


def recent_revisions(ws: Workspace, count: int) -> list[str]:
    """The tips of the `count` branches (local and remote-tracking) with the newest commits."""
    out = ws.repo.git(
        "for-each-ref", "--sort=-committerdate", "--format=%(refname:short)", "refs/heads", "refs/remotes"
    ).decode()
    names = [n for n in out.splitlines() if n and not n.endswith("/HEAD")]
    return names[:count]


def ensure_into(
    ws: Workspace, pathspecs: Sequence[str], target_root: Path, *, source: str | None = None
) -> EnsureResult:
    """Write the managed files' data under target_root (a scratch disk) at their paths, each
    atomically and verified, leaving the work tree and git's index alone: from the cache, the
    work tree when it holds the very bytes, or the archives (only `source`, when named)."""
    root = ws.repo.root.resolve()
    target = target_root.resolve()
    if target == root or root in target.parents:
        raise UsageError(
            f"--target-root {target_root} is inside the work tree",
            hint="name a directory outside it (a scratch disk); `git cvfs ensure PATH` writes the work tree itself",
        )
    if source is not None and source not in ws.settings.archives:
        raise UsageError(f"no archive named {source!r}", hint=f"configured: {', '.join(ws.archive_names)}")
    files = list_managed(ws, pathspecs) + list_unversioned(ws, pathspecs)
    require_matches(ws, pathspecs, (f.path for f in files), "ensure")
    result = EnsureResult()
    todo = [f for f in files if f.target is not None and f.state not in (State.PLAIN, State.INVALID)]
    result.failed.update({f.path: f.problem or "invalid ref" for f in files if f.state is State.INVALID})
    if not todo:
        return result
    target.mkdir(parents=True, exist_ok=True)
    archives: list[Archive] = []
    if any(not ws.cache.has(f.target.hex, f.target.size) for f in todo if f.target is not None):
        archives = [ws.archive(source)] if source else ws.archives
    progress = Progress("Writing files", len(todo), sum(f.size for f in todo))

    def one(f: ManagedFile) -> tuple[str, str | None]:
        try:
            return f.path, _write_into(ws, target, f, archives)
        except CvfsError as exc:
            return f.path, exc.message
        except OSError as exc:
            return f.path, result.cannot_write(f.path, exc)
        finally:
            progress.advance(1, f.size)

    ordered = _in_wanted_order(ws, todo, pathspecs)
    with ThreadPoolExecutor(max_workers=max(1, min(ws.settings.concurrency, len(ordered)))) as pool:
        outcomes = list(pool.map(one, ordered))
    progress.finish()
    for path, outcome in outcomes:
        if outcome == "already":
            result.already.append(path)
        elif outcome is None:
            result.materialized.append(path)
        else:
            result.failed[path] = outcome
    return result


def _write_into(ws: Workspace, target: Path, f: ManagedFile, archives: Sequence[Archive]) -> str | None:
    """One file under target; "already" when it holds the object's bytes there now."""
    ref = f.target
    assert ref is not None
    dest = target / f.path
    if dest.is_file() and not dest.is_symlink() and sha256_file(dest) == (ref.hex, ref.size):
        return "already"
    if ws.cache.has(ref.hex, ref.size):
        replace_file(target, f.path, ws.cache.object_path(ref.hex), create_dirs=True)
        return None
    if f.state is State.MATERIALIZED:  # the work tree's copy, hashed as it is copied
        here = ws.repo.root / f.path

        def copy(out: BinaryIO) -> None:
            with open(here, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        try:
            replace_file_fetched(target, f.path, copy, ref.hex, ref.size, create_dirs=True)
            return None
        except IntegrityError:
            pass  # changed since it was listed: the archives have the committed bytes

    def attempt(archive: Archive, key: str) -> bool | None:
        try:
            replace_file_fetched(
                target, f.path, lambda out: archive.download_to(key, out, ref.size), ref.hex, ref.size, create_dirs=True
            )
        except IntegrityError:
            return None
        return True

    fetch_verified(archives, ref, attempt)
    return None
