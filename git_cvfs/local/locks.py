"""Cross-process file locks with a bounded wait and a clear message when it runs out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from git_cvfs.errors import LockTimeoutError

LOCK_TIMEOUT = 60.0


@contextlib.contextmanager
def file_lock(path: Path, *, what: str, hint: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    import filelock  # 0.1 s to import here (filelock 4.3: logging, inspect, secrets): only writers pay it

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise LockTimeoutError(f"timed out after {timeout:.0f}s waiting for the lock on {what}", hint=hint) from None
