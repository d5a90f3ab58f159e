"""Cross-process file locks with a bounded wait and a clear message when it runs out.

A lock nobody holds is taken with one flock(2) on the lock file, the call filelock itself
makes on Unix: importing filelock costs about 0.1 s here (filelock 4.3 imports logging,
inspect and secrets), more than some whole commands that take a lock. Only when the lock is
held by another process (or flock is refused, as on a file system without it) does filelock
do the waiting, with its timeout and its fallback for such file systems. Both kinds of
holder lock the same file with flock, so each excludes the other; filelock, too, leaves the
file in place on release, so a waiter never locks an inode that another holder has replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from git_cvfs.errors import LockTimeoutError

LOCK_TIMEOUT = 60.0


def _take_if_free(path: Path) -> int | None:
    """A descriptor holding an exclusive flock on path, or None when that is not to be had at once."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return None  # filelock opens it again and reports what is wrong
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held (EWOULDBLOCK), or no flock here (ENOLCK, EOPNOTSUPP): filelock handles both
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def file_lock(path: Path, *, what: str, hint: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _take_if_free(path)
    if fd is not None:
        try:
            yield
        finally:
            os.close(fd)  # closing the only descriptor of this open file releases its flock
        return
    import filelock

    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise LockTimeoutError(f"timed out after {timeout:.0f}s waiting for the lock on {what}", hint=hint) from None
