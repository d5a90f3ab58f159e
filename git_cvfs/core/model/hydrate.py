"""Objects fetched into the cache on demand, in the order readers need them: what a reader is
blocked on first, then what was asked for in the background, small before large. Every object
reaches the cache only once its bytes match its ref (remote/transfer.py), so nothing is ever
served unverified; an object that cannot be fetched fails its readers, not the process."""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from git_cvfs.errors import CvfsError
from git_cvfs.format.ref import Ref
from git_cvfs.local.cache import Cache
from git_cvfs.remote.archive import Archive
from git_cvfs.remote.transfer import download_to_cache

URGENT, BACKGROUND = 0, 1
STATES = ("hydrated", "pending", "failed")


class _Job:
    __slots__ = ("done", "error", "path", "priority", "ref", "taken")

    def __init__(self, ref: Ref, priority: int) -> None:
        self.ref = ref
        self.priority = priority
        self.done = threading.Event()
        self.error: CvfsError | OSError | None = None
        self.path: Path | None = None
        self.taken = False  # a worker has it


class Hydrator:
    """A pool of `workers` threads fetching objects into `cache` from `archives` (tried in order).

    `objects` are the refs a reader may ask for, each with how many paths show it: the counts
    of hydrated, pending and failed files are kept for them as objects move, so asking costs
    nothing however many there are. on_change is called (outside any lock) after each move.

    With a budget, objects this hydrator fetched are evicted from the cache, least recently
    read first, once they hold more than `budget` bytes; an archive gave them (verified), so
    they can always be fetched again. Objects that were in the cache before are never evicted,
    nor one a reader has open.
    """

    def __init__(
        self,
        archives: Sequence[Archive],
        cache: Cache,
        objects: Mapping[Ref, int],
        *,
        workers: int,
        budget: int | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.archives = archives
        self.cache = cache
        self.budget = budget
        self._on_change = on_change or (lambda: None)
        self._lock = threading.Condition()
        self._queue: list[tuple[int, int, int, _Job]] = []  # (priority, size, seq, job)
        self._seq = itertools.count()
        self._jobs: dict[str, _Job] = {}  # hex -> the job fetching it now or queued
        self._fetched: dict[str, tuple[int, float]] = {}  # hex -> (size, last read) of the ones we fetched
        self._fetched_bytes = 0
        self._failed: dict[str, str] = {}  # hex -> why
        self._open: dict[str, int] = {}  # hex -> readers holding it open
        self._paths = {ref.hex: n for ref, n in objects.items()}
        self._state: dict[str, str] = {}  # hex -> one of STATES; absent: not in the cache
        self._tally = {state: [0, 0, 0] for state in STATES}  # files, objects, bytes
        self.evicted = 0
        self._closed = False
        for ref in objects:
            if cache.has(ref.hex, ref.size):
                self._move(ref.hex, ref.size, "hydrated")
        self._threads = [
            threading.Thread(target=self._work, name=f"cvfs-hydrate-{n}", daemon=True) for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def _move(self, hex_digest: str, size: int, state: str | None) -> None:
        """Under the lock: this object is now in `state` (None: not in the cache, not asked)."""
        files = self._paths.get(hex_digest, 0)
        old = self._state.pop(hex_digest, None)
        if old is not None:
            tally = self._tally[old]
            tally[0] -= files
            tally[1] -= 1
            tally[2] -= size
        if state is not None:
            self._state[hex_digest] = state
            tally = self._tally[state]
            tally[0] += files
            tally[1] += 1
            tally[2] += size

    # -- asking ---------------------------------------------------------------------------

    def open(self, ref: Ref) -> int:
        """A read-only descriptor of the verified object, fetched first if need be (ahead of
        everything queued). The object is kept while the descriptor is open: call close(ref).
        Raises what the archives said when none could give verified bytes."""
        while True:
            with self._lock:
                if self.cache.has(ref.hex, ref.size):
                    fd = os.open(self.cache.object_path(ref.hex), os.O_RDONLY)
                    self._open[ref.hex] = self._open.get(ref.hex, 0) + 1
                    if ref.hex in self._fetched:
                        self._fetched[ref.hex] = (ref.size, time.monotonic())
                    moved = self._state.get(ref.hex) != "hydrated"
                    if moved:
                        self._move(ref.hex, ref.size, "hydrated")
                    break
            [job] = self._submit([ref], URGENT)
            job.done.wait()
            if job.error is not None:
                raise job.error
            # fetched: loop to open it under the lock, before an eviction can take it
        if moved:
            self._on_change()
        return fd

    def close(self, ref: Ref) -> None:
        with self._lock:
            left = self._open.get(ref.hex, 1) - 1
            if left:
                self._open[ref.hex] = left
            else:
                self._open.pop(ref.hex, None)
        self._evict()

    def prefetch(self, refs: Sequence[Ref]) -> None:
        """Queue these behind anything a reader waits for, small before large (all at once, so
        an idle worker does not start on whichever came first). Objects in the cache, or that
        failed already, are left alone."""
        wanted = [r for r in refs if self._state.get(r.hex) is None and not self.cache.has(r.hex, r.size)]
        if wanted:
            self._submit(wanted, BACKGROUND)

    def _submit(self, refs: Sequence[Ref], priority: int) -> list[_Job]:
        jobs = []
        with self._lock:
            for ref in refs:
                job = self._jobs.get(ref.hex)
                if job is not None and job.priority <= priority:
                    jobs.append(job)
                    continue
                if job is None:
                    job = _Job(ref, priority)
                    self._jobs[ref.hex] = job
                    self._failed.pop(ref.hex, None)  # asked again: try again
                    self._move(ref.hex, ref.size, "pending")
                job.priority = priority  # a queued background job moves to the front
                heapq.heappush(self._queue, (priority, ref.size, next(self._seq), job))
                jobs.append(job)
            self._lock.notify_all()
        self._on_change()
        return jobs

    # -- the workers ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                priority, _, _, job = heapq.heappop(self._queue)
                if job.taken or priority != job.priority:
                    continue  # a stale entry: the job moved ahead, or a worker has it
                job.taken = True
            self._fetch(job)

    def _fetch(self, job: _Job) -> None:
        ref = job.ref
        had = self.cache.has(ref.hex, ref.size)
        try:
            job.path = download_to_cache(self.archives, self.cache, ref, concurrency=4)
        except (CvfsError, OSError) as exc:
            job.error = exc
        except BaseException as exc:  # a bug: its readers get EIO, the log the traceback
            job.error = OSError(f"internal error: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        with self._lock:
            self._jobs.pop(ref.hex, None)
            if job.error is not None:
                self._failed[ref.hex] = str(job.error)
                self._move(ref.hex, ref.size, "failed")
            else:
                self._move(ref.hex, ref.size, "hydrated")
                if not had:
                    self._fetched[ref.hex] = (ref.size, time.monotonic())
                    self._fetched_bytes += ref.size
        job.done.set()
        self._on_change()
        if job.error is None:
            self._evict()

    # -- budget ---------------------------------------------------------------------------

    def _evict(self) -> None:
        if self.budget is None:
            return
        victims = []
        with self._lock:
            if self._fetched_bytes <= self.budget:
                return
            for hex_digest, (size, _) in sorted(self._fetched.items(), key=lambda item: item[1][1]):
                if self._fetched_bytes <= self.budget:
                    break
                if hex_digest in self._open:
                    continue
                del self._fetched[hex_digest]
                self._fetched_bytes -= size
                self._move(hex_digest, size, None)
                self.cache.remove(hex_digest)  # under the lock: open() cannot race it
                self.evicted += 1
                victims.append(hex_digest)
        if victims:
            self._on_change()

    # -- reporting ------------------------------------------------------------------------

    def counts(self) -> dict[str, object]:
        """Files, objects and bytes hydrated, pending and failed; what the budget counts."""
        with self._lock:
            out: dict[str, object] = {
                state: dict(zip(("files", "objects", "bytes"), self._tally[state], strict=True)) for state in STATES
            }
            out["fetched_bytes"] = self._fetched_bytes
            out["evicted"] = self.evicted
            return out

    def failure(self, ref: Ref) -> str | None:
        with self._lock:
            return self._failed.get(ref.hex)

    def close_all(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
