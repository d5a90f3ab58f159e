"""The long-running filter loop: per-file status, delayed downloads, one notice at the end."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from git_cvfs import output, trace
from git_cvfs.core.model.buffer import MEMORY_LIMIT, SpillBuffer
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.plumbing.filter import (
    LOCAL_IN_MEMORY,
    Action,
    SmudgePlan,
    SmudgeReport,
    Staged,
    cache_chunks,
    clean,
    local_archive_bytes,
    local_archive_chunks,
    local_archives,
    plan_smudge,
    sampled_apart,
)
from git_cvfs.core.plumbing.hook_shims import install_missing_hooks
from git_cvfs.errors import ENVIRONMENT_HINTS, ArchiveError, CvfsError, IntegrityError, ObjectMissingError, RefError
from git_cvfs.format import filter_protocol as fp
from git_cvfs.format.pktline import Reader, Writer, read_packet
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.format.size import format_size
from git_cvfs.local.cache import BackgroundStore
from git_cvfs.local.config import CONFIG_FILE
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.index_stat import settle_racy, staged_blobs
from git_cvfs.local.ref_blobs import remember_ref_blobs

if TYPE_CHECKING:
    from queue import SimpleQueue

    from git_cvfs.remote.archive import LocalArchive

# git commands that run post-checkout or post-merge after the filter: out-of-band
# writes are finished by the hook there, so the notice would only be noise.
_HOOK_RUNNING = {"checkout", "switch", "clone", "merge", "pull"}
# git commands that smudge only to show history (diff textconv, blame, grep): refs stay refs.
_HISTORY_VIEWS = {"log", "show", "diff", "blame", "annotate", "grep", "format-patch", "whatchanged", "range-diff"}


class _Content:
    """A request's content packets, drainable after a failure so the stream stays in step.

    A plain iterator on purpose: a generator here would be closed when a consumer
    fails mid-stream, and the packets still on the wire could then not be drained.
    """

    def __init__(self, read: Reader) -> None:
        self._read = read
        self.finished = False

    def __iter__(self) -> _Content:
        return self

    def __next__(self) -> bytes:
        if self.finished:
            raise StopIteration
        payload = read_packet(self._read)
        if payload is None:
            self.finished = True
            raise StopIteration
        return payload

    def drain(self) -> None:
        for _ in self:
            pass


class RecentDeliveries:
    """The last `limit` paths the filter gave git bytes for, with (blob id, size).

    Bounded, so memory does not grow with the size of a checkout: only files
    written in the index's last second need settling, and those are the last
    ones git asked for. A path given again moves to the end.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def add(self, path: str, blob: str | None, size: int) -> None:
        """`blob` None: the blob is not known, and an earlier delivery of the path is forgotten."""
        self._items.pop(path, None)
        if blob is None:
            return
        self._items[path] = (blob, size)
        if len(self._items) > self.limit:
            self._items.popitem(last=False)

    def __bool__(self) -> bool:
        return bool(self._items)

    def as_dict(self) -> dict[str, tuple[str, int]]:
        return dict(self._items)


class _Budget:
    """Bytes held in memory for files verified ahead of git's asking for them: a verifier waits
    while taking its object would pass the limit (one object is always let through), until git
    has been given what is held. Closed when the process ends, so no verifier waits forever."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._closed = False
        self._cond = threading.Condition()

    def take(self, n: int) -> bool:
        with self._cond:
            while not self._closed and self.used and self.used + n > self.limit:
                self._cond.wait()
            if self._closed:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Slot:
    """One delayed file: what git will ask for again, and once done, what to give it (the cache
    file, or verified bytes held in memory) or why not. Small on purpose: a checkout of 100,000
    files holds 100,000 of them (a Future each cost 2 KB)."""

    __slots__ = ("blob", "error", "path", "ref", "value")

    def __init__(self, path: str, ref: Ref, blob: str | None) -> None:
        self.path = path
        self.ref = ref
        self.blob = blob
        self.value: Path | bytes | None = None
        self.error: BaseException | None = None


class _Workers:
    """Threads, started on first use, that take delayed files off a queue and do one job on
    each: the job's result (or its error) goes into the slot through done. A job that hands
    its slot on to other workers returns None. Once closed, what is still queued is reported
    as not done rather than worked on (git has gone). Bare threads and a queue, not an
    executor: a Future per delayed file cost 2 KB while a checkout waited."""

    def __init__(
        self,
        name: str,
        count: int,
        job: Callable[[_Slot], Path | bytes | None],
        done: Callable[[_Slot, Path | bytes | None, BaseException | None], None],
    ) -> None:
        self.name = name
        self.count = count
        self._job = job
        self._done = done
        self._todo: SimpleQueue[_Slot | None] | None = None
        self._threads: list[threading.Thread] = []
        self._starting = threading.Lock()
        self._closed = False

    def put(self, slot: _Slot) -> None:
        with self._starting:  # the main thread and, handing slots on, other workers
            if self._todo is None:
                from queue import SimpleQueue  # here: a checkout of a few files never needs it

                self._todo = SimpleQueue()
                for i in range(self.count):
                    thread = threading.Thread(target=self._work, name=f"{self.name}-{i}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            self._todo.put(slot)

    def _work(self) -> None:
        assert self._todo is not None
        while (slot := self._todo.get()) is not None:
            if self._closed:
                self._done(slot, None, CvfsError("the checkout ended before this file was asked for"))
                continue
            try:
                value = self._job(slot)
            except BaseException as exc:  # handed to the main thread, which reports it
                self._done(slot, None, exc)
            else:
                if value is not None:
                    self._done(slot, value, None)

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            assert self._todo is not None
            self._todo.put(None)
        for thread in self._threads:
            thread.join()


# Verified ahead (delayed smudges from a directory archive): at most this much held at once,
# and only after this many files were served in line (a checkout of a few files pays neither
# the threads nor their imports).
# Objects below AHEAD_MIN are served in line: hashing one costs less than git's second request.
AHEAD_BYTES = 64 << 20
AHEAD_AFTER = 8
AHEAD_MIN = 64 << 10


class FilterServer:
    def __init__(
        self,
        ws: Workspace,
        read: Reader,
        write: Writer,
        flush: Callable[[], object] = lambda: None,
        filer: BackgroundStore | None = None,
    ) -> None:
        self.ws = ws
        self.filer = filer  # files cleaned objects into the cache in the background
        self.read = read
        self.write = write
        self._flush = flush
        self.report = SmudgeReport()
        self.can_delay = False
        # Delayed smudges: downloads on transfer.concurrency threads; objects of a directory
        # archive read and hashed on a thread per core while git writes the files already
        # answered, within a memory budget.
        self._downloads = _Workers("download", ws.settings.concurrency, self._download_slot, self._slot_done)
        self._verifiers = _Workers("verify", max(2, os.cpu_count() or 2), self._verify_ahead, self._slot_done)
        self._ahead = _Budget(AHEAD_BYTES)
        self._served_local = 0  # files served from a directory archive in line
        self._delayed: dict[str, _Slot] = {}  # answered "delayed", not yet listed as available
        self._ready: dict[str, _Slot] = {}  # listed as available: git asks for each next
        self._finished = threading.Condition()  # a delayed file's work is done
        self._done_paths: list[str] = []  # those done since the last list_available_blobs
        self._archive_down: str | None = None
        self._started = False
        self._tree_checked = False  # settings taken from the tree being checked out, when needed
        self.unhooked = False  # git will not run our hooks here: archive what is cleaned, at the end
        self.cleaned: dict[str, Ref] = {}  # path -> the ref this process answered a clean with
        # blob id -> ref bytes of every ref this process handed git or was handed: the hooks and
        # status then need not ask git which index blobs are refs (local/ref_blobs.py)
        self.ref_blobs: dict[str, bytes] = {}
        # path -> (git id of the ref blob, bytes given to git), for settle_racy at the end.
        self._delivered = RecentDeliveries()
        # Objects downloaded from the primary archive for this checkout (oid hex -> archive), and
        # the files given them: once git has written those, the cache copies go (one copy on disk).
        self._sources: dict[str, str] = {}
        self._from_primary: list[tuple[str, Ref]] = []
        self._budget_noted = False
        self._staged: dict[bytes, tuple[str, int]] | None = None  # index name -> (blob, size)
        self._staged_refs: dict[str, Ref | None] | None = None  # blob -> its ref, for large files

    def serve(self) -> None:
        caps = fp.handshake(self.read, self.write, self._flush)
        self.can_delay = "delay" in caps
        trace.trace("filter", f"handshake: version=2, capabilities {' '.join(sorted(caps))}")
        self._flush()
        try:
            while (req := fp.read_request(self.read)) is not None:
                self._handle(req)
                self._flush()
            self._settle_written()
            self._drop_downloaded_copies()
            remember_ref_blobs(self.ws.repo.cvfs_dir, self.ref_blobs)
        finally:
            self._ahead.close()
            self._verifiers.close()  # before the downloads: a verifier may hand a slot on to them
            self._downloads.close()
            if self._started:
                self._finish()

    def _cleaned_ref(self, path: str, ref: Ref) -> None:
        encoded = ref.encode()
        self.ref_blobs[git_blob_id(encoded)] = encoded
        if self.unhooked:
            self.cleaned[path] = ref

    def _staged_entry(self, path: str) -> Staged | None:
        """The index's entry for a file git cleans again, unless its bytes are surely new.

        The index is read once, when a first file is large enough to ask (git writes its own
        at the end of the command: a file cleaned twice in one command is compared with the
        entry from before, whose ref was staged all the same). For files too large to hold in
        memory while they are checked, the staged blobs are looked at too, once, at the first
        such file: a blob that is not a ref (a file committed before it was tracked, now
        `git add --renormalize`d) cannot be the answer, and a ref's object, where this machine
        has a copy, is compared with the file on a few pages first (sampled_apart)."""
        if self._staged is None:
            settings = self.ws.settings
            smallest = min([settings.min_size, *(size for _prefix, size in settings.min_size_by_prefix)])
            try:
                self._staged = staged_blobs(self.ws.repo.index_file, max(smallest, MAX_REF_BYTES)) or {}
            except OSError:  # an index it cannot read: every file is spooled, as before
                self._staged = {}
        found = self._staged.get(path.encode("utf-8", "surrogateescape"))
        if found is None:
            return None
        if found[1] > MEMORY_LIMIT:
            if self._staged_refs is None:
                self._staged_refs = self._refs_of_large_entries()
            ref = self._staged_refs.get(found[0])
            if ref is None or sampled_apart(self.ws, path, ref, self._local_archives):
                return None
        return Staged(*found)

    def _refs_of_large_entries(self) -> dict[str, Ref | None]:
        """blob -> its ref, for the staged blobs of large files; None for a blob that is no ref."""
        from git_cvfs.core.model.refscan import small_blobs

        assert self._staged is not None
        large = [blob for blob, size in self._staged.values() if size > MEMORY_LIMIT]
        try:
            _sizes, contents = small_blobs(self.ws.repo, large)
        except (CvfsError, OSError):  # git could not say: every large file is spooled, as before
            return {}
        out: dict[str, Ref | None] = dict.fromkeys(large)
        for blob, data in contents.items():
            with contextlib.suppress(RefError):
                out[blob] = parse_ref(data)
        return out

    def _first_request(self) -> None:
        self._started = True
        try:
            problems = install_missing_hooks(self.ws.repo)
        except (CvfsError, OSError) as exc:
            problems = [f"could not install them: {exc}"]
        if problems:
            # Loud, and early: without the hooks a commit records no rows and a push does not
            # wait for the archive. What this process cleans is archived at its end instead.
            self.unhooked = True
            output.warn(
                "git-cvfs hooks will not run in this repository: " + "; ".join(problems),
                hint="run `git cvfs install --local` (and commit what it adds to committed hook scripts); "
                "until then git-cvfs archives what `git add` stores as it goes",
            )

    def _handle(self, req: fp.Request) -> None:
        if trace.ENABLED:
            started = time.monotonic()
            trace.trace("filter", "<- " + " ".join(f"{k}={v}" for k, v in req.headers.items()))
            try:
                self._handle_request(req)
            finally:
                trace.trace("filter", f"-> {req.command} {req.pathname} done ({time.monotonic() - started:.3f} s)")
            return
        self._handle_request(req)

    def _handle_request(self, req: fp.Request) -> None:
        if not self._started:
            self._first_request()
        if req.command == "list_available_blobs":  # the only request that carries no content
            fp.reply_available(self.write, self._take_available())
            return
        content = _Content(self.read)
        try:
            if req.command == "clean":
                self._refuse_after_store_failure()
                on_ref = partial(self._cleaned_ref, req.pathname)
                answer = clean(
                    self.ws, req.pathname, content, on_ref=on_ref, filer=self.filer, staged=self._staged_entry
                )
                fp.reply_content(self.write, answer)
            elif req.command == "smudge":
                _report_store_failures(self._filer_settle())
                self._smudge(req, content)
            else:
                content.drain()
                fp.reply_status(self.write, "error")
        except fp.ReplySent as sent:
            content.drain()
            output.error(f"git-cvfs: {req.command} {req.pathname}: {_describe(sent.cause)}")
        except (CvfsError, OSError) as exc:
            content.drain()
            hint = exc.hint if isinstance(exc, CvfsError) else ENVIRONMENT_HINTS.get(exc.errno or 0)
            output.error(f"git-cvfs: {req.command} {req.pathname}: {_describe(exc)}", hint)
            fp.reply_status(self.write, "error")

    def _refuse_after_store_failure(self) -> None:
        """A file whose object could not be filed in the cache fails the git command at the next
        clean (git then stages nothing); only the last few can fail after git has finished."""
        failures = self.filer.failures() if self.filer else []
        if failures:
            raise CvfsError(_store_failure(*failures[0]), hint="fix the cause, then run the git command again")

    def _filer_settle(self) -> list[tuple[str, Exception]]:
        # Objects cleaned earlier in this process must be in the cache before a smudge looks.
        return self.filer.settle() if self.filer else []

    def _smudge(self, req: fp.Request, content: _Content) -> None:
        if not self._tree_checked:
            self._use_tree_settings(req)
        if req.pathname in self._ready:
            content.drain()
            slot = self._ready.pop(req.pathname)
            self._reply_downloaded(req.pathname, slot.ref, slot.blob, slot)
            return
        first = next(content, b"")
        if content.finished or (second := next(content, None)) is None:
            # One packet or none (every ref): no buffer needed.
            plan = plan_smudge(self.ws, req.pathname, first[: MAX_REF_BYTES + 1], len(first))
            if plan.action is Action.PASS:
                self._pass(req, plan, [first] if first else [])
                return
            head = first
        else:
            buf = SpillBuffer(self.ws.cache.tmp)
            try:
                buf.write(first)
                buf.write(second)
                for chunk in content:
                    buf.write(chunk)
                head = buf.head(MAX_REF_BYTES + 1)
                plan = plan_smudge(self.ws, req.pathname, head, buf.size)
                if plan.action is Action.PASS:
                    self._pass(req, plan, buf.chunks())
                    return
            finally:
                buf.close()
        assert plan.ref is not None
        encoded = plan.ref.encode()
        blob = _blob_of(req, encoded, head)
        if blob is not None:
            self.ref_blobs[blob] = encoded
        self._smudge_ref(req, plan, blob, encoded)

    def _use_tree_settings(self, req: fp.Request) -> None:
        """A checkout writes files in path order, so `.assets/x` (or `-x.bin`) comes before
        `.cvfs/config` itself: with no settings file in the work tree yet, read the one in the
        tree being checked out (git names it in each request), not defaults."""
        self._tree_checked = True
        tree = req.headers.get("treeish") or req.headers.get("ref")
        if tree and not (self.ws.repo.root / CONFIG_FILE).is_file():
            from git_cvfs.local.config import load_settings

            self.ws.use_settings(load_settings(self.ws.repo, tree=tree))

    def _pass(self, req: fp.Request, plan: SmudgePlan, chunks: Iterator[bytes] | list[bytes]) -> None:
        """Content that is not a ref goes back to git as it came."""
        if plan.problem:
            output.warn(f"{req.pathname}: {plan.problem}")
        fp.reply_content(self.write, chunks)

    def _smudge_ref(self, req: fp.Request, plan: SmudgePlan, blob: str | None, encoded: bytes) -> None:
        ref = plan.ref
        assert ref is not None
        path = req.pathname
        if self._reading_history:
            # `git log -p`, `git show`, `git diff A B`, blame, grep: git smudges each old version
            # only to hand it to textconv, which shows a ref and its bytes alike (oid and size).
            # The ref goes back as it is: nothing is downloaded, read or announced.
            fp.reply_content(self.write, [encoded])
        elif self._archiving and plan.action in (Action.LEAVE, Action.DEFER):
            # `git archive` would ship the ref in place of the data, and exit 0: fail it instead.
            raise CvfsError(
                f"git archive cannot include {path} ({format_size(ref.size)}) through git",
                hint="use `git cvfs archive REV -o FILE`, which streams every managed file's data",
            )
        elif plan.action is Action.LEAVE:
            reason = "GIT_CVFS_SKIP_SMUDGE=1" if self.ws.settings.skip_smudge else "fetch.include/exclude"
            self._leave(path, ref, blob, reason, encoded)
        elif plan.action is Action.DEFER:
            if not self._leave_unreadable(path, ref, blob, encoded):
                self.report.defer(self.ws, path)
                fp.reply_content(self.write, [encoded])
        elif plan.action is Action.CACHE:
            fp.reply_content(self.write, cache_chunks(self.ws, ref))
            self._delivered.add(path, blob, ref.size)
            self._wrote_data()
        elif self._served_local >= AHEAD_AFTER and self._may_verify_ahead(req, ref):
            # Read and verified on another core while git writes the files already answered.
            self._delayed[path] = slot = _Slot(path, ref, blob)
            self._verifiers.put(slot)
            fp.reply_status(self.write, "delayed")
        elif (local := local_archive_chunks(self._local_archives, ref)) is not None:
            self._served_local += 1
            fp.reply_content(self.write, local)
            self._delivered.add(path, blob, ref.size)
            self._wrote_data()
        elif self._archive_down is not None:
            self._leave(path, ref, blob, self._archive_down, encoded)
        elif self._leave_unreadable(path, ref, blob, encoded):
            return
        elif req.can_delay and self.can_delay:
            self._delayed[path] = slot = _Slot(path, ref, blob)
            self._downloads.put(slot)
            fp.reply_status(self.write, "delayed")
        else:
            slot = _Slot(path, ref, blob)
            try:
                slot.value = self._download(ref)
            except CvfsError as exc:
                slot.error = exc
            self._reply_downloaded(path, ref, blob, slot)

    def _leave_unreadable(self, path: str, ref: Ref, blob: str | None, encoded: bytes) -> bool:
        """Leave the ref when the object is not in the cache and no archive may be read on this
        machine (none approved): no request is made, and the notice says how to approve."""
        problem = self.ws.unreadable()
        if problem is None or self.ws.cache.has(ref.hex, ref.size):
            return False
        if self._archiving:
            raise CvfsError(problem.message, problem.hint)
        self.report.leave(path, problem.message, f"{problem.hint}, then `git cvfs ensure`")
        fp.reply_content(self.write, [encoded])
        self._delivered.add(path, blob, len(encoded))
        return True

    @cached_property
    def _reading_history(self) -> bool:
        return _parent_git_command() in _HISTORY_VIEWS

    @cached_property
    def _archiving(self) -> bool:
        return _parent_git_command() == "archive"

    @cached_property
    def _local_archives(self) -> list[LocalArchive]:
        return local_archives(self.ws)

    def _may_verify_ahead(self, req: fp.Request, ref: Ref) -> bool:
        return (
            req.can_delay and self.can_delay and AHEAD_MIN <= ref.size <= LOCAL_IN_MEMORY and bool(self._local_archives)
        )

    def _slot_done(self, slot: _Slot, value: Path | bytes | None, error: BaseException | None) -> None:
        with self._finished:
            slot.value = value
            slot.error = error
            self._done_paths.append(slot.path)
            self._finished.notify_all()

    def _verify_ahead(self, slot: _Slot) -> Path | bytes | None:
        """The object's bytes from a directory archive, verified, held (within the budget) until
        git asks; when no directory archive has a good copy, the slot goes to the downloads."""
        ref = slot.ref
        if not self._ahead.take(ref.size):
            raise CvfsError("the checkout ended before this file was asked for")
        try:
            data = local_archive_bytes(self._local_archives, ref)
        except BaseException:
            self._ahead.give(ref.size)
            raise
        if data is not None:
            return data
        self._ahead.give(ref.size)
        self._downloads.put(slot)
        return None

    def _download_slot(self, slot: _Slot) -> Path:
        return self._download(slot.ref)

    def _download(self, ref: Ref) -> Path:
        from git_cvfs.remote.transfer import download_to_cache

        return download_to_cache(
            self.ws.archives, self.ws.cache, ref, concurrency=self.ws.settings.concurrency, source=self._sources
        )

    def _reply_downloaded(self, path: str, ref: Ref, blob: str | None, slot: _Slot) -> None:
        exc = slot.error
        if exc is None and isinstance(held := slot.value, bytes):
            try:
                fp.reply_content(self.write, [held])
            finally:
                self._ahead.give(len(held))
            self._delivered.add(path, blob, ref.size)
            self._wrote_data()
            return
        if exc is None:
            fp.reply_content(self.write, cache_chunks(self.ws, ref))
            self._delivered.add(path, blob, ref.size)
            self._wrote_data()
            if self._sources.get(ref.hex) == "primary":
                self._from_primary.append((path, ref))
            return
        if isinstance(exc, IntegrityError | ObjectMissingError):
            reason = exc.message
        elif isinstance(exc, ArchiveError):
            # Downloads in flight when the archive went away fail each with its own key: one
            # reason for them all, so the report is one line.
            if self._archive_down is None:
                self._archive_down = f"archive unreachable: {exc.message}"
            reason = self._archive_down
        else:
            reason = f"archive error: {exc}"
        self._leave(path, ref, blob, reason)

    def _leave(self, path: str, ref: Ref, blob: str | None, reason: str, encoded: bytes | None = None) -> None:
        if self._archiving:  # an archive with a ref in place of the data is not one
            raise CvfsError(
                f"git archive cannot include {path}: {reason}",
                hint="use `git cvfs archive REV -o FILE` once the archive is reachable",
            )
        self.report.leave(path, reason)
        encoded = encoded or ref.encode()
        fp.reply_content(self.write, [encoded])
        self._delivered.add(path, blob, len(encoded))

    def _settle_written(self) -> None:
        """git closes the filter as it exits, after writing its index: take the files it wrote
        from what this process gave it out of git's racy re-check (index_stat.settle_racy)."""
        if not self._delivered:
            return
        try:
            settle_racy(self.ws.repo.index_file, self.ws.repo.root, self._delivered.as_dict(), lock_wait=0)
        except OSError as exc:
            output.warn(f"git-cvfs could not record the stat data of the files it wrote: {exc}")

    def _drop_downloaded_copies(self) -> None:
        """The lean cache (cache.keep = false): objects this checkout downloaded from the primary
        archive, now in the work tree (git wrote them and its index vouches for them), leave the
        cache, so a clone holds its data once. The archive just gave these bytes, verified."""
        if not self._from_primary or self.ws.settings.cache_keep:
            return
        from git_cvfs.core.model.lean_cache import drop_cache_copies

        try:
            drop_cache_copies(self.ws, self._from_primary, {ref.hex: True for _, ref in self._from_primary})
        except (CvfsError, OSError) as exc:
            output.warn(f"git-cvfs kept the cache copies of what it downloaded: {exc}")

    def _wrote_data(self) -> None:
        """Once per process, when it gave git a managed file's data and worktree.budget is set:
        the post-checkout (or post-merge) hook, which git runs before it closes this filter,
        then keeps the work tree within it (core/budget.py)."""
        if self._budget_noted:
            return
        self._budget_noted = True
        if self.ws.settings.worktree_budget is None:
            return
        from git_cvfs.core.budget import mark_due

        try:
            mark_due(self.ws)
        except OSError as exc:
            output.warn(f"git-cvfs could not note that worktree.budget needs checking: {exc}")

    def _take_available(self) -> list[str]:
        if not self._delayed:
            return []
        with self._finished:
            while not self._done_paths:
                self._finished.wait()
            done, self._done_paths = self._done_paths, []
        for path in done:
            self._ready[path] = self._delayed.pop(path)
        return done

    def _finish(self) -> None:
        self.report.print_notice(hook_will_run=_parent_git_command() in _HOOK_RUNNING)


def _blob_of(req: fp.Request, encoded: bytes, content: bytes) -> str | None:
    """The git id of the blob git asked to smudge, when that blob is the ref as Ref.encode
    writes it (`encoded`, nearly always); None for any other spelling of a ref, whose entries
    are not settled. git names the blob in its request (`blob=`) in every checkout, which
    saves hashing it here."""
    if content != encoded:
        return None
    return req.headers.get("blob") or git_blob_id(encoded)


def _report_store_failures(failures: list[tuple[str, Exception]]) -> None:
    """Files git has already been answered for: their bytes are still in the work tree."""
    for i, (path, exc) in enumerate(failures, 1):
        hint = "the bytes are only in the work tree for now: fix the cause, then `git add` again"
        output.error(f"git-cvfs: {_store_failure(path, exc)}", hint=hint if i == len(failures) else None)


def _store_failure(path: str, exc: Exception) -> str:
    return f"could not store {path} in the cache: {_describe(exc)}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, CvfsError):
        return exc.message
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _parent_git_command() -> str | None:
    """The subcommand of the git process that started this filter (Linux /proc).

    git starts the filter through `sh -c` when its command line has spaces, so
    look past a shell parent to the git process itself.
    """
    pid = os.getppid()
    for _ in range(3):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        if Path(argv[0].decode(errors="replace")).name in ("git", "git.exe"):
            return _git_subcommand(argv[1:])
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's parent
    return None


def _git_subcommand(args: list[bytes]) -> str | None:
    skip_next = False
    for arg in args:
        text = arg.decode(errors="replace")
        if skip_next:
            skip_next = False
        elif text in ("-c", "-C", "--git-dir", "--work-tree", "--namespace"):
            skip_next = True
        elif text and not text.startswith("-"):
            return text
    return None


def _widen_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe (Linux's default limit for users; git leaves 64 KiB). A 256 KiB
    reply then goes out in one write instead of four, each waiting for git to wake and read."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):  # not a pipe, or the limit is lower here: keep git's
            fcntl.fcntl(fd, setsize, 1 << 20)


def run_filter_process(ws: Workspace) -> int:
    _widen_pipe(sys.stdin.fileno())
    _widen_pipe(sys.stdout.fileno())
    stdin = open(sys.stdin.fileno(), "rb", buffering=1 << 18, closefd=False)
    # As large as the pipe: a whole reply of up to ~1 MiB leaves in one write, and git, reading
    # it packet by packet, never waits on a half-written reply (256 KiB left in two writes).
    stdout = open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)
    filer = BackgroundStore(ws.cache)
    server = FilterServer(ws, stdin.read, stdout.write, stdout.flush, filer=filer)
    try:
        server.serve()
    finally:
        failures = filer.close()
        _report_store_failures(failures)
    stdout.flush()
    if server.cleaned:
        _archive_unhooked(ws, server.cleaned)
    return 0


def _archive_unhooked(ws: Workspace, cleaned: dict[str, Ref]) -> None:
    """git will not run our hooks here (a hook manager took them over): upload what `git add`
    just stored to the primary archive now, so a push cannot publish refs whose bytes exist
    only on this disk. Failures are said; the commit can still go through."""
    from git_cvfs.core.push import archive_refs

    try:
        outcome = archive_refs(
            ws, [(p, r) for p, r in cleaned.items() if ws.cache.has(r.hex, r.size)], names=["primary"]
        )
    except CvfsError as exc:
        output.warn(f"git-cvfs could not archive what was added: {exc.message}", hint=exc.hint)
        return
    failed = {**outcome.missing, **outcome.unreachable}
    if failed:
        output.warn(
            f"git-cvfs could not archive {len(failed)} object(s): {next(iter(failed.values()))}",
            hint="run `git cvfs install --local`, then `git cvfs push`",
        )
