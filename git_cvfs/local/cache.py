"""The content-addressed object cache under <git common dir>/cvfs, with atomic puts."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from git_cvfs.crash import crash_point, fault_point
from git_cvfs.errors import IntegrityError
from git_cvfs.format.ref import validate_hex
from git_cvfs.local import writeback

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

CHUNK = 1 << 20


def open_noatime(path: str | os.PathLike[str], flags: int = 0, *, dir_fd: int | None = None) -> int:
    """Open for reading (with these flags besides) without touching the access time, where this
    user may ask that: git-cvfs looking at a file is no use of it (`offload --budget` frees the
    least recently used first, by access time)."""
    flags |= os.O_RDONLY | os.O_CLOEXEC
    try:
        return os.open(path, flags | getattr(os, "O_NOATIME", 0), dir_fd=dir_fd)
    except PermissionError:  # O_NOATIME needs ownership of the file (or CAP_FOWNER)
        return os.open(path, flags, dir_fd=dir_fd)


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a file, read in bounded chunks, its access time left alone (a dry
    run hashing a file made it the most recent)."""
    h = hashlib.sha256()
    size = 0
    with open(open_noatime(path), "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# Past this many bytes a spool's writes go to a thread of its own (_Writer), handed over in
# batches of about _BATCH bytes; at most _QUEUED bytes wait for any spool's writer at a time.
_WRITER_FROM = 8 << 20
_BATCH = 1 << 20
_QUEUED = 16 << 20
_queued = threading.BoundedSemaphore(_QUEUED // _BATCH)

# What a disk says when it will not take a spool's bytes, whatever the bytes: full, over quota,
# read-only, not writable by this user. Not EIO: a failing disk is not to be talked past.
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class _Writer:
    """Writes a large spool's bytes, and hands them to the disk, on a thread of its own.

    The spool's caller hashes a packet while the one before is copied into the page cache:
    on one thread the two took turns, and for 1 GiB the copy (0.9 s here) and the hash (0.7
    s) added up. The parts are the caller's bytes objects, written as they are (writev), so
    nothing is copied twice; memory waiting on writers is bounded by _QUEUED in all, so a
    slow disk holds the caller back instead of filling memory. The first error is kept, the
    rest of the queue dropped, and the error raised to whoever hands over more or closes.
    """

    def __init__(self, fd: int, offset: int) -> None:
        import queue

        self._fd = fd
        self._offset = offset
        self._writeback = writeback.Writeback(fd, 0)
        self._queue: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cvfs-spool-writer", daemon=True)
        self._thread.start()

    def put(self, parts: list[bytes]) -> None:
        if self.error is not None:
            raise self.error
        _queued.acquire()
        self._queue.put(parts)

    def close(self) -> None:
        """Wait until everything handed over is written; raise the first error."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (parts := self._queue.get()) is not None:
            try:
                if self.error is None:
                    fault_point("cache:write")
                    _writev_all(self._fd, parts)
                    self._offset += sum(map(len, parts))
                    self._writeback.written_to(self._offset)
            except BaseException as exc:  # raised in the spool's caller
                self.error = exc
            finally:
                _queued.release()


def _writev_all(fd: int, parts: list[bytes]) -> None:
    done = os.writev(fd, parts)
    if done == sum(map(len, parts)):
        return
    writeback.write_all(fd, memoryview(b"".join(parts))[done:])  # a short write: rare


class Spool:
    """A temporary file that hashes what is written to it; `Cache.adopt` files it under its oid."""

    def __init__(self, tmp_dir: Path, *, hash_past_errors: bool = False) -> None:
        """hash_past_errors: a write the disk refuses (full, read-only, not ours: UNWRITABLE)
        does not raise; the file goes, the bytes given are still hashed and counted, and
        write_error holds the refusal for the caller to raise, or not, once it knows the oid."""
        self.path = tmp_dir / f"spool-{os.getpid()}-{time.monotonic_ns()}"
        self._hash = hashlib.sha256()
        self.size = 0
        self._writer: _Writer | None = None
        self._parts: list[bytes] = []  # for the writer, not handed over yet
        self._parts_size = 0
        self._midway = False
        self._sealed = False
        self._closed = False
        self._hash_past_errors = hash_past_errors
        self._hashing = True
        self.write_error: OSError | None = None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            try:
                self._fd = os.open(self.path, flags, 0o644)
            except FileNotFoundError:  # the first spool in this cache: make the directory once
                tmp_dir.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if not self._refused(exc):
                raise
            self._fd = -1
            self._closed = True
            self.write_error = exc

    def write(self, chunk: bytes | memoryview) -> None:
        if self.size and not self._midway:  # once a spool, not at every packet: it reads the environment
            self._midway = True
            crash_point("cache:mid-spool")
        if self._hashing:
            self._hash.update(chunk)
        if self.write_error is not None:
            pass
        elif self._writer is not None:
            self._parts.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
            self._parts_size += len(chunk)
            if self._parts_size >= _BATCH:
                self._hand_over()
        else:
            try:
                writeback.write_all(self._fd, chunk)
            except OSError as exc:
                if not self._refused(exc):
                    raise
                self._give_up(exc)
            else:
                if self.size + len(chunk) >= _WRITER_FROM:  # a large object: the rest on a thread
                    self._writer = _Writer(self._fd, self.size + len(chunk))
        self.size += len(chunk)

    def write_hashed(self, chunks: Iterable[bytes], hashed: hashlib._Hash) -> None:
        """Start an empty spool with bytes the caller has hashed already (in `hashed`, which
        must hold exactly these): written, not hashed again."""
        assert self.size == 0
        self._hash = hashed.copy()
        self._hashing = False
        try:
            for chunk in chunks:
                self.write(chunk)
        finally:
            self._hashing = True

    def _refused(self, exc: OSError) -> bool:
        return self._hash_past_errors and exc.errno in UNWRITABLE

    def _give_up(self, exc: OSError) -> None:
        """Stop writing: the file goes at once (on a full disk its blocks are wanted back)."""
        self.write_error = exc
        writer, self._writer = self._writer, None
        self._parts, self._parts_size = [], 0
        if writer is not None:
            with contextlib.suppress(Exception):  # its error, if any, is the same refusal
                writer.close()
        self.discard()

    def _hand_over(self) -> None:
        assert self._writer is not None
        parts, self._parts, self._parts_size = self._parts, [], 0
        try:
            self._writer.put(parts)
        except OSError as exc:
            if not self._refused(exc):
                raise
            self._give_up(exc)

    def written(self) -> None:
        """Wait until every byte given so far is in the file; raise the writer's error, if any
        (or, hashing past errors, keep it in write_error)."""
        if self._writer is None:
            return
        if self._parts:
            self._hand_over()
            if self._writer is None:  # given up
                return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except OSError as exc:
            if not self._refused(exc):
                raise
            self._give_up(exc)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def finish(self, *, sync: bool = True) -> str:
        self.written()
        if not self._sealed:
            os.fchmod(self._fd, 0o444)  # cache objects are never written again
        if sync:
            fault_point("cache:fsync")
            os.fsync(self._fd)
        os.close(self._fd)
        self._closed = True
        return self._hash.hexdigest()

    def seal(self) -> None:
        """No more writes: the file becomes read-only (cache objects are never written again)
        and the disk is asked to start writing whatever it has not taken yet."""
        self.written()
        os.fchmod(self._fd, 0o444)
        self._sealed = True
        writeback.start_all(self._fd)

    def discard(self) -> None:
        if self._writer is not None:
            self._parts, self._parts_size = [], 0
            with contextlib.suppress(Exception):  # what it failed on no longer matters
                self.written()
        if not self._closed:
            os.close(self._fd)
            self._closed = True
        if self._fd == -1:  # never made
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        # Only reached with the spool still present when store_spool() did not take it.
        self.discard()


class BackgroundStore:
    """Finishes spools (fsync, then rename into place) on worker threads.

    The filter answers git with a ref as soon as a file is hashed; the fsync,
    which costs about as much as receiving the file, overlaps with the next
    ones. An object is under its oid only once its bytes are on disk, as before.

    The fsyncs go in batches: a worker seals each spool (read-only, and the disk starts
    writing it) and sets it aside; the worker whose spool makes `batch` then fsyncs,
    closes and renames each of them into place, one after another. The first fsync's
    journal commit carries the others' new files, so the rest cost little. An fsync per
    spool as it came, on four threads, cost a journal commit each, and file creation (the
    next spools, git's own loose objects) waited on them: `git add` of 2,000 x 256 KiB,
    2.9-3.3 s batched against 4.0-4.8 s (4 alternating rounds). Sealing on the caller's
    thread instead was slower. `settle` files what is left.

    Open descriptors are bounded: at most `in_flight` spools wait for a worker, fewer than
    `batch` wait for a batch to fill, and each worker flushes one batch at a time.

    The pool (and concurrent.futures, with logging: 10 ms) comes with the first
    spool: a filter that only smudges, as in every checkout and clone, never needs it.
    """

    def __init__(self, cache: Cache, workers: int = 4, in_flight: int = 16, batch: int = 16) -> None:
        self.cache = cache
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(in_flight)
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._failures: list[tuple[str, Exception]] = []
        self._batch_size = batch
        self._sealed: list[tuple[Spool, str, str]] = []  # (spool, oid, label), each fd still open

    def submit(self, spool: Spool, hex_digest: str, *, sync: bool, label: str) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="cvfs-filer")
        self._slots.acquire()
        future = self._pool.submit(self._file, spool, hex_digest, sync, label)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _file(self, spool: Spool, hex_digest: str, sync: bool, label: str) -> None:
        try:
            if not sync:
                spool.finish(sync=False)
                self.cache.store_spool(spool, hex_digest)
                return
            spool.seal()
        except Exception as exc:
            self._failed(spool, label, exc)
            return
        with self._lock:
            self._sealed.append((spool, hex_digest, label))
            if len(self._sealed) < self._batch_size:
                return
            batch, self._sealed = self._sealed, []
        self._flush(batch)

    def _flush(self, batch: list[tuple[Spool, str, str]]) -> None:
        """fsync, close and rename each sealed spool, in order."""
        for spool, hex_digest, label in batch:
            try:
                spool.finish(sync=True)
                self.cache.store_spool(spool, hex_digest)
            except Exception as exc:
                self._failed(spool, label, exc)

    def _failed(self, spool: Spool, label: str, exc: Exception) -> None:
        # reported by whoever settles; the bytes are still in the work tree
        spool.discard()
        with self._lock:
            self._failures.append((label, exc))

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def failures(self) -> list[tuple[str, Exception]]:
        """Failures so far, each reported once: (label, error)."""
        with self._lock:
            out, self._failures = self._failures, []
        return out

    def settle(self) -> list[tuple[str, Exception]]:
        """Wait until every submitted spool is filed (or failed); the failures not yet reported."""
        with self._lock:
            pending = list(self._pending)
        if pending:  # the filter asks before every smudge, nearly always with nothing pending
            from concurrent.futures import wait

            wait(pending)
        with self._lock:
            batch, self._sealed = self._sealed, []
        self._flush(batch)
        return self.failures()

    def close(self) -> list[tuple[str, Exception]]:
        failures = self.settle()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        return failures


class Cache:
    def __init__(self, cvfs_dir: Path) -> None:
        self.root = cvfs_dir
        self.objects = cvfs_dir / "objects"
        self.tmp = cvfs_dir / "tmp"

    def object_path(self, hex_digest: str) -> Path:
        return Path(self._object_file(hex_digest))

    def _object_file(self, hex_digest: str) -> str:
        """The object's path as a string: the filter asks `has` once per file, and building a
        Path from its parts cost more than the stat."""
        validate_hex(hex_digest)
        return f"{self.objects}/{hex_digest[0:2]}/{hex_digest[2:4]}/{hex_digest}"

    def has(self, hex_digest: str, size: int | None = None) -> bool:
        try:
            st = os.stat(self._object_file(hex_digest))
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def spool(self, *, hash_past_errors: bool = False) -> Spool:
        return Spool(self.tmp, hash_past_errors=hash_past_errors)

    def store_spool(self, spool: Spool, hex_digest: str) -> Path:
        """Move a finished, verified spool into place; an object already present wins."""
        dest = self.object_path(hex_digest)
        if dest.exists():
            spool.discard()
            return dest
        crash_point("cache:before-adopt")
        try:
            os.replace(spool.path, dest)
        except FileNotFoundError:  # a new fan-out directory; it almost always exists already
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(spool.path, dest)
        return dest

    def put_stream(self, chunks: Iterable[bytes], *, expect_hex: str | None = None) -> tuple[str, int]:
        """Hash and store a stream; with expect_hex, a mismatch stores nothing and raises."""
        with self.spool() as spool:
            for chunk in chunks:
                spool.write(chunk)
            hex_digest = spool.finish()
            if expect_hex is not None and hex_digest != expect_hex:
                raise IntegrityError(f"content hashes to sha256:{hex_digest}, expected sha256:{expect_hex}")
            self.store_spool(spool, hex_digest)
            return hex_digest, spool.size

    def tmp_path(self, purpose: str = "get") -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{purpose}-{os.getpid()}-{time.monotonic_ns()}"

    def store_verified(self, path: Path, expect_hex: str, expect_size: int) -> Path | None:
        """Hash a downloaded file; file it under its oid if it matches, else delete it and return None."""
        if expect_size >= writeback.EVERY:  # to disk while it is hashed: the fsync then waits less
            fd = os.open(path, os.O_RDONLY)
            try:
                writeback.start_all(fd)
            finally:
                os.close(fd)
        if sha256_file(path) != (expect_hex, expect_size):
            path.unlink(missing_ok=True)
            return None
        return self.store_file(path, expect_hex)

    def store_file(self, path: Path, expect_hex: str) -> Path:
        """File a file already shown to hash to expect_hex (in this cache's tmp dir) under its oid."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dest = self.object_path(expect_hex)
        if dest.exists():
            path.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o444)
        crash_point("cache:before-adopt")
        os.replace(path, dest)
        return dest

    def remove(self, hex_digest: str) -> None:
        try:
            os.unlink(self._object_file(hex_digest))
        except FileNotFoundError:
            pass

    def iter_objects(self) -> Iterable[str]:
        if not self.objects.is_dir():
            return
        for a in sorted(self.objects.iterdir()):
            for b in sorted(a.iterdir()):
                for obj in sorted(b.iterdir()):
                    yield obj.name

    def verify(self, hex_digest: str) -> bool:
        return sha256_file(self.object_path(hex_digest))[0] == hex_digest

    def clean_stale_tmp(self, older_than: float = 24 * 3600) -> int:
        """Spools left behind by killed processes; young ones may belong to a live process."""
        removed = 0
        if not self.tmp.is_dir():
            return 0
        cutoff = time.time() - older_than
        for entry in self.tmp.iterdir():
            try:
                if entry.lstat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
