"""Every call to an archive, as open_archive hands it out: traced (GIT_CVFS_TRACE), watched
(a line on stderr while a request goes unanswered), and given up on once per run when the
archive does not answer at all. The wrappers go on the instance itself: callers still see the
backend's own class and its other attributes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from git_cvfs import output, trace
from git_cvfs.errors import UnreachableError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.remote.archive import Archive, ObjectInfo, Stored

_TRACED = ("head", "stored", "put_file", "download_to", "read_range", "list", "delete")


def trace_calls(archive: Archive) -> None:
    """GIT_CVFS_TRACE: every call to this archive, with its key, outcome and duration."""
    if not trace.ENABLED:
        return

    def traced(method: str, call: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            key = args[0] if args else kwargs.get("key", kwargs.get("prefix", ""))
            extra = f" bytes {args[2]}+{args[3]}" if method == "read_range" and len(args) >= 4 else ""
            start = time.monotonic()
            try:
                result = call(*args, **kwargs)
            except BaseException as exc:
                took = time.monotonic() - start
                trace.trace(
                    "archive", f"{archive.name} {method} {key}{extra}: {type(exc).__name__}: {exc} ({took:.3f} s)"
                )
                raise
            took = time.monotonic() - start
            info = result.info if isinstance(result, Stored) else result
            said = " -> none" if result is None and method in ("head", "stored") else ""
            if isinstance(info, ObjectInfo):
                said = f" -> {info.size} bytes, etag {info.etag}"
            trace.trace("archive", f"{archive.name} {method} {key}{extra}{said} ({took:.3f} s)")
            return result

        return run

    trace.trace("archive", f"{archive.name} opened: {archive.url}")
    for method in _TRACED:
        setattr(archive, method, traced(method, getattr(archive, method)))


# A request unanswered this long gets a line on stderr (and again every WAIT_REPEAT seconds),
# so a hung archive is never silence: the user sees what is awaited and when it gives up.
WAIT_NOTICE = float(os.environ.get("GIT_CVFS_WAIT_NOTICE", "5"))
WAIT_REPEAT = 10.0
# Calls that move a whole large object run long while bytes flow; their progress shows that.
_BULK = ("put_file", "download_to")
_BULK_FROM = 16 << 20


class _Waiting:
    """The calls in flight to remote archives, watched by one daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[float, str]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self._said = 0.0

    def begin(self, what: str) -> int:
        with self._lock:
            self._next += 1
            self._calls[self._next] = (time.monotonic(), what)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="cvfs-waiting", daemon=True)
                self._thread.start()
            return self._next

    def end(self, token: int) -> None:
        with self._lock:
            self._calls.pop(token, None)

    def _watch(self) -> None:
        while True:
            time.sleep(1)
            now = time.monotonic()
            with self._lock:
                oldest = min(self._calls.values(), default=None)
            if oldest is None or now - oldest[0] < WAIT_NOTICE or now - self._said < WAIT_REPEAT:
                continue
            self._said = now
            output.info(f"git-cvfs: still waiting for {oldest[1]} ({now - oldest[0]:.0f} s)")


_WAITING = _Waiting()


def watch_calls(archive: Archive, settings: ArchiveSettings) -> None:
    """Every call to a remote archive is watched: one that goes unanswered is said, with
    when git-cvfs gives up on it (transfer.timeout x transfer.attempts)."""
    limit = f"gives up after about {settings.timeout * settings.attempts:.0f} s: transfer.timeout, transfer.attempts"
    # An archive that did not answer once (after every retry) is not waited on again in this
    # run: 2,000 files against a hung endpoint fail in one timeout, not 2,000 / concurrency.
    gave_up: list[UnreachableError] = []

    def watched(method: str, call: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            if gave_up:
                raise UnreachableError(f"{gave_up[0].message} (not asked again in this run)", hint=gave_up[0].hint)
            if method in _BULK and len(args) >= 3 and isinstance(args[2], int) and args[2] >= _BULK_FROM:
                token = None
            else:
                key = args[0] if args else ""
                token = _WAITING.begin(f"archive {archive.name} ({archive.url}) to answer {method} {key}; {limit}")
            try:
                return call(*args, **kwargs)
            except UnreachableError as exc:
                gave_up.append(exc)
                raise
            finally:
                if token is not None:
                    _WAITING.end(token)

        return run

    for method in _TRACED:
        if method != "list":  # a generator: its requests happen as it is read
            setattr(archive, method, watched(method, getattr(archive, method)))
