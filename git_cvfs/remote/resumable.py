"""Downloads of large objects that a killed process resumes instead of starting again.

The object is fetched in fixed ranges, several at once, into a partial file named after the
object; each range, once written and flushed, is noted in a journal beside it. A later run
takes the same partial file, skips the ranges the journal names, and fetches the rest. The
whole file is hashed at the end: bytes from any run that do not make the object send the
download back to the start, so resuming never trusts what it cannot check.

Parallel ranged writes leave holes where a killed process had not written yet, so the
partial file's size says nothing about what it holds: only the journal does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from git_cvfs.crash import crash_point
from git_cvfs.format.ref import Ref
from git_cvfs.output import moved
from git_cvfs.remote.archive import Archive, hash_fd, object_key

RANGE = 16 << 20  # bytes per ranged request
RESUMABLE_FROM = 64 << 20  # objects from this size are fetched this way


def partial_path(tmp_dir: Path, ref: Ref) -> Path:
    return tmp_dir / f"partial-{ref.hex}"


def _journal(partial: Path) -> Path:
    return partial.with_name(partial.name + ".done")


def _ranges_done(partial: Path, size: int) -> set[int]:
    """Range numbers the journal names, when the partial file is the object's size (else none)."""
    try:
        if os.stat(partial).st_size != size:
            return set()
        text = _journal(partial).read_text("ascii", "replace")
    except FileNotFoundError:
        return set()
    count = -(-size // RANGE)
    return {int(n) for n in text.split() if n.isdigit() and int(n) < count}


def fetch_resumable(archive: Archive, ref: Ref, partial: Path, *, concurrency: int) -> bool:
    """Fill `partial` with the object, resuming what an earlier run left; True when its bytes
    hash to the oid (the journal is then removed), False when they do not (both are removed,
    and the next try starts from zero). ArchiveError when the archive fails."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    # 0666 less the umask, as for the cache's other files: in a clone several accounts share,
    # another one resumes the download instead of starting it again
    fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one writer per partial file; a second run waits, then finds it done
        done = _ranges_done(partial, ref.size)
        if not done:
            os.ftruncate(fd, 0)
        os.ftruncate(fd, ref.size)
        todo = [n for n in range(-(-ref.size // RANGE)) if n not in done]
        journal = os.open(_journal(partial), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            _fetch_ranges(archive, ref, fd, journal, todo, concurrency)
        finally:
            os.close(journal)
        if hash_fd(hashlib.sha256(), fd).hexdigest() == ref.hex:
            _journal(partial).unlink(missing_ok=True)
            return True
        partial.unlink(missing_ok=True)
        _journal(partial).unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)


def _fetch_ranges(archive: Archive, ref: Ref, fd: int, journal: int, todo: list[int], concurrency: int) -> None:
    key = object_key(ref.hex)
    written = [0]
    count = -(-ref.size // RANGE)
    # What an earlier run fetched counts as moved: the progress line shows the object's bytes.
    moved(sum(min(RANGE, ref.size - n * RANGE) for n in range(count) if n not in set(todo)))

    def one(n: int) -> None:
        start = n * RANGE
        archive.read_range(key, fd, start, min(RANGE, ref.size - start))
        moved(min(RANGE, ref.size - start))
        os.fdatasync(fd)  # the bytes before the journal says so
        os.write(journal, f"{n}\n".encode())
        written[0] += 1
        if written[0] >= 2:
            crash_point("transfer:mid-resumable")

    if concurrency <= 1 or len(todo) <= 1:
        for n in todo:
            one(n)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo))) as pool:
        for future in [pool.submit(one, n) for n in todo]:
            future.result()


def discard(partial: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    with contextlib.suppress(FileNotFoundError):
        _journal(partial).unlink()
