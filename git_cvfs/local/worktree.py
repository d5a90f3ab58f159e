"""Safe, atomic writes into the work tree.

Every write walks the path one directory at a time with O_NOFOLLOW, so a
symlink anywhere on the path is refused rather than followed, and the new
content is renamed over the old file only after it has been fsynced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from git_cvfs.crash import crash_point, fault_point, pause_point
from git_cvfs.errors import (
    ChangedUnderfootError,
    CvfsError,
    FileInUseError,
    IntegrityError,
    UnsafePathError,
    UsageError,
)
from git_cvfs.format.paths import validate_repo_path
from git_cvfs.format.ref import MAX_REF_BYTES
from git_cvfs.local import writeback
from git_cvfs.local.cache import open_noatime
from git_cvfs.local.processes import alive

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@functools.cache
def new_file_mode() -> int:
    """The mode git gives a file it creates: 0666 less the umask (a clone several accounts work
    in sets umask 002, and the group may then write what anyone checks out). Read from
    /proc/self/status: asking os.umask() changes it, for every thread, for a moment. 0644 where
    it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return 0o644


def _open_dir(name: str, dir_fd: int, rel_path: str) -> int:
    """A directory on rel_path's way, never through a symlink."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                f"{rel_path}: '{name}' on the path is a symlink or not a directory; refusing to write through it",
                hint="replace the symlink with a real directory, or move the data elsewhere",
            ) from None
        raise


def _regular_lstat(name: str, dir_fd: int, rel_path: str) -> os.stat_result:
    st = os.lstat(name, dir_fd=dir_fd)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(
            f"{rel_path} is a symlink; git-cvfs never writes through symlinks",
            hint="remove the symlink, then run the command again",
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{rel_path} is not a regular file")
    return st


def _parent_fd(root: Path, rel_path: str, *, create: bool = False) -> tuple[int, str]:
    """(fd of the file's directory, file name), refusing symlinks on the way; the caller closes the fd."""
    validate_repo_path(rel_path)
    parts = rel_path.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            next_fd = _open_dir(part, fd, rel_path)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


@contextlib.contextmanager
def open_parent(root: Path, rel_path: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """(fd of the file's directory, file name), refusing symlinks on the way."""
    fd, name = _parent_fd(root, rel_path, create=create)
    try:
        yield fd, name
    finally:
        os.close(fd)


class HeadReader:
    """read_head for many files: each directory is opened once (O_NOFOLLOW, component by
    component, as open_parent does), and a file larger than a ref is only lstat'ed. Only the
    directories on the way to the current one stay open, so sorted paths need few descriptors."""

    def __init__(self, root: Path) -> None:
        self._open: dict[str, int] = {"": os.open(root, os.O_RDONLY | os.O_DIRECTORY)}

    def _dir_fd(self, rel_dir: str, rel_path: str) -> int:
        fd = self._open.get(rel_dir)
        if fd is not None:
            return fd
        parent, _, name = rel_dir.rpartition("/")
        fd = _open_dir(name, self._dir_fd(parent, rel_path), rel_path)
        chain = {""} | {rel_dir[:i] for i, c in enumerate(rel_dir) if c == "/"}
        for other in [d for d in self._open if d not in chain]:
            os.close(self._open.pop(other))
        self._open[rel_dir] = fd
        return fd

    def read(self, rel_path: str) -> tuple[os.stat_result, bytes] | None:
        """As read_head: (lstat, the first bytes if it could be a ref, else b""); None when missing."""
        validate_repo_path(rel_path)
        rel_dir, _, name = rel_path.rpartition("/")
        try:
            dir_fd = self._dir_fd(rel_dir, rel_path)
            st = _regular_lstat(name, dir_fd, rel_path)
            if st.st_size > MAX_REF_BYTES:
                return st, b""
            fd = open_noatime(name, os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                return st, os.read(fd, MAX_REF_BYTES + 1)
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open = {}

    def __enter__(self) -> HeadReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_head(root: Path, rel_path: str, limit: int = MAX_REF_BYTES + 1) -> tuple[os.stat_result, bytes] | None:
    """lstat and the first bytes of a regular file; None when missing. Refuses symlinks."""
    try:
        with open_parent(root, rel_path) as (dir_fd, name):
            st = _regular_lstat(name, dir_fd, rel_path)
            fd = open_noatime(name, os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                return st, os.read(fd, limit)
            finally:
                os.close(fd)
    except FileNotFoundError:
        return None


def replace_file(
    root: Path,
    rel_path: str,
    source: Path,
    *,
    expect_head: bytes | None = None,
    create_dirs: bool = False,
) -> os.stat_result:
    """Atomically replace rel_path with a copy of source, keeping its mode; returns the new stat.

    With expect_head, the current file must still hold exactly those bytes just
    before the rename, so a file the user changed meanwhile is kept.
    """
    return finish_write(prepare_replace_file(root, rel_path, source, expect_head=expect_head, create_dirs=create_dirs))


def prepare_replace_file(
    root: Path, rel_path: str, source: Path, *, expect_head: bytes | None = None, create_dirs: bool = False
) -> PreparedWrite:
    """replace_file up to the flush: finish_write completes it."""

    def copy(out: int) -> None:
        with open(source, "rb") as src:
            copy_fd(src.fileno(), out)
        _backdate(out)

    return prepare_write(root, rel_path, copy, expect_head=expect_head, create_dirs=create_dirs)


def replace_file_fetched(
    root: Path,
    rel_path: str,
    fetch: Callable[[BinaryIO], None],
    hex_digest: str,
    size: int,
    *,
    expect_head: bytes | None = None,
    create_dirs: bool = False,
) -> os.stat_result:
    """As replace_file, for an archived object with no copy in the cache: `fetch` fills the
    temporary file (a directory archive's copy, or an S3 or Azure download whose ranged GETs
    land at their offsets in any order), which is then read back and hashed, so what is
    checked is what will be renamed. Bytes that do not match `size` and `hex_digest` raise
    IntegrityError before the rename, and the work tree is untouched."""
    return finish_write(
        prepare_replace_file_fetched(
            root, rel_path, fetch, hex_digest, size, expect_head=expect_head, create_dirs=create_dirs
        )
    )


def prepare_replace_file_fetched(
    root: Path,
    rel_path: str,
    fetch: Callable[[BinaryIO], None],
    hex_digest: str,
    size: int,
    *,
    expect_head: bytes | None = None,
    create_dirs: bool = False,
) -> PreparedWrite:
    """replace_file_fetched up to the flush (the bytes fetched and verified): finish_write completes it."""

    def fill(out: int) -> None:
        with open(out, "wb", closefd=False) as f:
            fetch(f)
        if size >= writeback.EVERY:
            writeback.start_all(out)  # to disk while it is hashed: the fsync then waits less
        crash_point("worktree:before-verify")
        h = hashlib.sha256()
        buf = bytearray(_chunk_for(size))
        view = memoryview(buf)
        got = 0
        while got <= size and (n := os.preadv(out, [buf], got)):
            h.update(view[:n])
            got += n
        if got != size or h.hexdigest() != hex_digest:
            raise IntegrityError(f"{rel_path}: the fetched bytes are not sha256:{hex_digest} ({size} bytes)")
        _backdate(out)

    return prepare_write(root, rel_path, fill, expect_head=expect_head, create_dirs=create_dirs)


_COPY_CHUNK = 1 << 20


def _chunk_for(size: int) -> int:
    """A copy buffer for an object of `size` bytes: one byte more than the object (the read that
    finds its end is the second), up to _COPY_CHUNK: sixteen writers of small objects do not
    each hold a whole MiB."""
    return min(_COPY_CHUNK, size + 1)


def _backdate(fd: int) -> None:
    """git compares index and file mtimes in whole seconds: a file whose mtime falls in the
    same second as the index write is "racily clean" and gets re-hashed by the next
    `git status`. One second in the past avoids that, and any later edit still moves the
    mtime, so real changes are still seen."""
    now = time.time_ns()
    os.utime(fd, ns=(now, now - 1_000_000_000))


def write_bytes(
    root: Path, rel_path: str, data: bytes, *, create_dirs: bool = False, expect_stat: os.stat_result | None = None
) -> os.stat_result:
    """Atomically write small content (a ref, a shard) at rel_path.

    With expect_stat (offload: still the bytes that were verified), the file being replaced
    must still have that size, mtime, ctime and inode just before the rename, and no other
    process may have it open for writing: it is refused by name (FileInUseError), since that
    process's later writes would go to a file nobody can see any more.
    """

    def write(out: int) -> None:
        writeback.write_all(out, data)

    return finish_write(prepare_write(root, rel_path, write, create_dirs=create_dirs, expect_stat=expect_stat))


def replace_when_full(root: Path, rel_path: str, data: bytes, *, expect_stat: os.stat_result) -> os.stat_result:
    """write_bytes for a disk too full to take even a ref, where the file's bytes are held
    elsewhere (offload: verified in the archives). The file, checked as write_bytes checks it
    (unchanged, nobody writing it), is moved aside and removed, which frees its blocks; then
    the ref is written in its place. Between the two the path is missing, never other bytes:
    a crash there leaves what `git checkout -- PATH` restores."""
    dir_fd, name = _parent_fd(root, rel_path, create=False)
    try:
        aside = f".{name[:100]}.cvfs-{os.getpid()}-{os.urandom(8).hex()}.tmp"  # a dead one is swept
        with _unchanged(dir_fd, name, rel_path, expect_stat):
            os.rename(name, aside, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.unlink(aside, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        return write_bytes(root, rel_path, data)
    except OSError as exc:
        raise CvfsError(
            f"{rel_path}: its bytes were freed (the archives hold them), and then its ref could not be "
            f"written: {exc.strerror or exc}",
            hint=f"free a little space, then `git checkout -- {rel_path}` puts the ref back",
        ) from None


@contextlib.contextmanager
def _unchanged(dir_fd: int, name: str, rel_path: str, expect_stat: os.stat_result) -> Iterator[None]:
    """While the body runs (a rename), the file is still the one expect_stat describes and no
    process is writing it (_no_writers)."""
    with _no_writers(dir_fd, name, rel_path):
        if _identity(os.lstat(name, dir_fd=dir_fd)) != _identity(expect_stat):
            raise ChangedUnderfootError(f"{rel_path} changed while it was being checked; left as it is")
        yield


@contextlib.contextmanager
def _no_writers(dir_fd: int, name: str, rel_path: str) -> Iterator[None]:
    """While the body runs, no other process has the file open for writing, and none can open
    it for writing: a read lease (F_SETLEASE) is refused while a writer has the file open, and
    holds new writers back until it is released. Where a lease cannot be had (a file of
    another user, a filesystem without leases, a thread other than the main one), /proc is
    asked instead: which processes hold the file open for writing."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    leased = False
    old_handler = None
    try:
        if threading.current_thread() is threading.main_thread():
            # A writer's open breaks the lease with SIGIO, which would end this process: ignored
            # while the lease is held (the lease is released right after the rename anyway).
            old_handler = signal.signal(signal.SIGIO, signal.SIG_IGN)
            try:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
                leased = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EBUSY):
                    raise FileInUseError(rel_path) from None
        if not leased and _open_for_writing_elsewhere(os.fstat(fd)):
            raise FileInUseError(rel_path)
        yield
    finally:
        if leased:
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        os.close(fd)
        if old_handler is not None:
            signal.signal(signal.SIGIO, old_handler)


def _open_for_writing_elsewhere(st: os.stat_result) -> bool:
    """Whether another process holds the file (by device and inode) open for writing (Linux /proc)."""
    me = os.getpid()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
    except OSError:
        return False
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.stat(f"/proc/{pid}/fd/{fd}")
                if (target.st_dev, target.st_ino) != (st.st_dev, st.st_ino):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    flags = int(next(line for line in info if line.startswith("flags:")).split()[1], 8)
            except (OSError, StopIteration, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                return True
    return False


def write_stream(
    root: Path, rel_path: str, fill: Callable[[int], None], *, create_dirs: bool = False
) -> os.stat_result:
    """Atomically write content that `fill` writes into the descriptor it is given (a shard
    rewritten row by row). An exception from fill leaves the old file as it was."""
    return finish_write(prepare_write(root, rel_path, fill, create_dirs=create_dirs))


def place_file(
    root: Path, rel_path: str, source: Path, *, expect_head: bytes | None = None, create_dirs: bool = False
) -> os.stat_result:
    """As replace_file, for a file already verified (a resumed download): it is moved into
    place, not copied, when it is on the work tree's filesystem; copied when it is not.
    It is gone from `source` afterwards either way, unless an error left the work tree as it was."""

    def fill(out: int) -> None:
        with open(source, "rb") as src:
            copy_fd(src.fileno(), out)

    return finish_write(
        prepare_write(root, rel_path, fill, expect_head=expect_head, create_dirs=create_dirs, adopt=source)
    )


class PreparedWrite:
    """A file's new content in a temporary file beside it, not yet flushed, checked or put in
    place: finish_write does those (then the file is written), abandon_write removes it.
    Holds two descriptors (its directory's and its own) until then."""

    __slots__ = ("adopt", "dir_fd", "expect_head", "expect_stat", "moved", "name", "out", "rel_path", "tmp_name")

    def __init__(
        self,
        rel_path: str,
        dir_fd: int,
        name: str,
        tmp_name: str,
        out: int,
        *,
        expect_head: bytes | None,
        expect_stat: os.stat_result | None,
        adopt: Path | None,
        moved: bool,
    ) -> None:
        self.rel_path = rel_path
        self.dir_fd = dir_fd
        self.name = name
        self.tmp_name = tmp_name
        self.out = out
        self.expect_head = expect_head
        self.expect_stat = expect_stat
        self.adopt = adopt
        self.moved = moved


def prepare_write(
    root: Path,
    rel_path: str,
    fill: Callable[[int], None],
    *,
    expect_head: bytes | None = None,
    create_dirs: bool = False,
    expect_stat: os.stat_result | None = None,
    adopt: Path | None = None,
) -> PreparedWrite:
    """The one way files are written into the work tree, with finish_write: a temporary file
    beside the target, filled (or, with `adopt`, a file moved there from elsewhere on the same
    filesystem, then `fill` only across filesystems) and given the target's mode. Nothing at
    rel_path has changed yet; finish_write flushes, checks and renames it."""
    try:
        dir_fd, name = _parent_fd(root, rel_path, create=create_dirs)
    except FileNotFoundError:
        if expect_head is None and expect_stat is None:  # nothing was there to begin with
            raise
        raise _disappeared(rel_path) from None  # its directory removed meanwhile (a checkout)
    try:
        try:
            old = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            old = None
        if old is not None and not stat.S_ISREG(old.st_mode):
            kind = "a symlink" if stat.S_ISLNK(old.st_mode) else "not a regular file"
            raise UnsafePathError(
                f"{rel_path} is {kind}; refusing to replace it", hint="remove it, then run the command again"
            )
        mode = (old.st_mode & 0o777) if old else new_file_mode()
        _remove_dead_tmp(dir_fd)
        tmp_name = f".{name[:100]}.cvfs-{os.getpid()}-{os.urandom(8).hex()}.tmp"
        moved = adopt is not None and _move_in(adopt, dir_fd, tmp_name)
        flags = os.O_RDWR | os.O_NOFOLLOW | (0 if moved else os.O_CREAT | os.O_EXCL)
        try:
            out = os.open(tmp_name, flags, 0o600, dir_fd=dir_fd)
        except FileNotFoundError:
            if (expect_head is None and expect_stat is None) or moved:
                raise
            raise _disappeared(rel_path) from None  # the directory is gone: removed since it was opened
        try:
            if not moved:
                fill(out)
            os.fchmod(out, mode)
        except BaseException:
            os.close(out)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dir_fd)
            raise
    except BaseException:
        os.close(dir_fd)
        raise
    return PreparedWrite(
        rel_path,
        dir_fd,
        name,
        tmp_name,
        out,
        expect_head=expect_head,
        expect_stat=expect_stat,
        adopt=adopt,
        moved=moved,
    )


def finish_write(p: PreparedWrite) -> os.stat_result:
    """The second half of a write (prepare_write): flush the temporary file, check the target is still
    what the caller saw (expect_head, expect_stat), and rename it into place; the new stat.
    On any error the temporary file is removed and the target left as it is."""
    dir_fd, name, tmp_name = p.dir_fd, p.name, p.tmp_name
    try:
        try:
            try:
                fault_point("worktree:fsync")
                os.fsync(p.out)
                ours = os.fstat(p.out)
            finally:
                os.close(p.out)
            crash_point("worktree:before-rename")
            if p.expect_head is not None:
                _replace_holding(dir_fd, name, tmp_name, p.rel_path, p.expect_head, ours)
            elif p.expect_stat is None:
                os.replace(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                with _unchanged(dir_fd, name, p.rel_path, p.expect_stat):
                    os.replace(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dir_fd)
            raise
        if p.adopt is not None and not p.moved:
            p.adopt.unlink(missing_ok=True)
        pause_point("worktree:placed")
        _remove_young_tmp(dir_fd, name)
        return _still_ours(dir_fd, name, p.rel_path, ours)
    finally:
        os.close(dir_fd)


def _disappeared(rel_path: str) -> ChangedUnderfootError:
    return ChangedUnderfootError(f"{rel_path} disappeared while it was being written; left as it is")


def _still_ours(dir_fd: int, name: str, rel_path: str, ours: os.stat_result) -> os.stat_result:
    """The stat of the file just put in place, as the index is to record it; an error if another
    writer (git checkout) has already removed or replaced it: its stat is not ours to record."""
    try:
        done = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _disappeared(rel_path) from None
    if not _same_file(done, ours):
        raise ChangedUnderfootError(
            f"{rel_path} changed while it was being materialized; left as it now is",
            hint=f"run `git cvfs ensure {rel_path}` again if you want the archived content",
        )
    return done


def abandon_write(p: PreparedWrite) -> None:
    """Remove a prepared write's temporary file; the target stays as it is."""
    try:
        os.close(p.out)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p.tmp_name, dir_fd=p.dir_fd)
    finally:
        os.close(p.dir_fd)


def _move_in(source: Path, dir_fd: int, tmp_name: str) -> bool:
    """Rename source to tmp_name in the directory; False when they are on different filesystems."""
    try:
        os.rename(source, tmp_name, dst_dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True


def _identity(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file's bytes do: a write moves mtime and ctime, a replace the inode."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_swept: set[tuple[int, int]] = set()
_swept_lock = threading.Lock()


# Our temporary files: `.<name>.cvfs-<pid>-<16 random hex digits>.tmp`. A user's file would
# have to match this exactly, and also be ours, old, and left by a process that is gone.
_OUR_TMP = re.compile(r"^\.(.*)\.cvfs-(\d+)-[0-9a-f]{16}\.tmp$")
STALE_TMP_AGE = 60  # seconds untouched: a live writer touches its file far more often than this


# Dead writers' temp files too young for the sweep, by directory and by the file they were
# for: removed once that file is put in place (its job done), with no second listing.
_young: dict[tuple[int, int], dict[str, list[str]]] = {}


def _remove_dead_tmp(dir_fd: int) -> None:
    """Temp files a killed git-cvfs left in this directory. One is removed only when its name is
    ours (with an unguessable part), it is a regular file of our user, the process that wrote
    it is gone, and it is older than STALE_TMP_AGE; a younger one is removed when the file it
    was for is put in place (_remove_young_tmp). The directory is listed once per process
    (per file it would be quadratic in a big directory)."""
    st = os.fstat(dir_fd)
    key = (st.st_dev, st.st_ino)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    cutoff = time.time() - STALE_TMP_AGE
    young: dict[str, list[str]] = {}
    for entry in os.listdir(dir_fd):
        match = _OUR_TMP.match(entry)
        if match is None or not _dead_writers_file(dir_fd, entry, int(match.group(2))):
            continue
        try:
            if os.lstat(entry, dir_fd=dir_fd).st_mtime < cutoff:
                os.unlink(entry, dir_fd=dir_fd)
            else:
                young.setdefault(match.group(1), []).append(entry)
        except FileNotFoundError:
            pass
    if young:
        with _swept_lock:
            _young[key] = young


def _remove_young_tmp(dir_fd: int, target: str) -> None:
    st = os.fstat(dir_fd)
    with _swept_lock:
        entries = _young.get((st.st_dev, st.st_ino), {}).pop(target[:100], [])
    for entry in entries:
        match = _OUR_TMP.match(entry)
        if match is not None and _dead_writers_file(dir_fd, entry, int(match.group(2))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=dir_fd)


def _dead_writers_file(dir_fd: int, entry: str, pid: int) -> bool:
    """A regular file of ours whose writer is gone."""
    try:
        info = os.lstat(entry, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not alive(pid)


def _replace_holding(dir_fd: int, name: str, tmp_name: str, rel_path: str, expect: bytes, ours: os.stat_result) -> None:
    """Put tmp_name in name's place only if name holds expect, also against a replace racing
    this one (git checkout unlinks a file and creates it anew): the two are exchanged in one
    step (renameat2 RENAME_EXCHANGE), then the file taken out must be the one that was checked
    and still hold expect; if not, they are exchanged back, and what was there stays."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _disappeared(rel_path) from None
    changed = ChangedUnderfootError(
        f"{rel_path} changed while it was being materialized; left as it now is",
        hint=f"run `git cvfs ensure {rel_path}` again if you want the archived content",
    )
    try:
        if os.read(fd, len(expect) + 1) != expect:
            raise changed
        checked = os.fstat(fd)
        pause_point("worktree:before-replace")
        try:
            exchanged = _exchange(dir_fd, tmp_name, name)
        except FileNotFoundError:  # removed since it was checked: nothing to put back either
            raise _disappeared(rel_path) from None
        if not exchanged:  # a filesystem without it: replace, as before
            os.replace(tmp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        taken = os.lstat(tmp_name, dir_fd=dir_fd)  # what was at name until the exchange
        pause_point("worktree:exchanged")
        if (taken.st_dev, taken.st_ino) != (checked.st_dev, checked.st_ino) or os.pread(
            fd, len(expect) + 1, 0
        ) != expect:
            _put_back(dir_fd, tmp_name, name, ours)
            raise changed
        os.unlink(tmp_name, dir_fd=dir_fd)
    finally:
        os.close(fd)


def _put_back(dir_fd: int, taken: str, name: str, ours: os.stat_result) -> None:
    """Undo the exchange: what was taken out goes back to name, and our file (`ours`) to taken,
    for the caller to remove. If another writer has meanwhile removed our file from name (git
    checkout unlinks before it creates), the taken file goes back only where nothing is: a new
    file of that writer's stays, and the taken one is dropped, as its unlink would have dropped it."""
    try:
        _exchange(dir_fd, taken, name)
    except FileNotFoundError:  # name removed: nothing there to take the taken file's place
        with contextlib.suppress(FileExistsError):  # created anew just now: that file stays
            _rename2(dir_fd, taken, dir_fd, name, _RENAME_NOREPLACE)
        return
    if not _same_file(os.lstat(taken, dir_fd=dir_fd), ours):  # swapped out the other writer's new file
        _exchange(dir_fd, taken, name)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats are of one file, across a rename (which moves its ctime): a removed
    file's inode number is soon given to the next one created, so its size and mtime count too."""
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_dev, b.st_ino, b.st_size, b.st_mtime_ns)


_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    import ctypes  # here: only ensure's replace needs it, not the filter's start-up

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.renameat2
    except (OSError, AttributeError):
        return None


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _rename2(src_fd: int, src: str | os.PathLike[str], dst_fd: int, dst: str | os.PathLike[str], flags: int) -> bool:
    """renameat2(2) with flags; False where the C library or the filesystem cannot."""
    call = _renameat2()
    if call is None:
        return False
    if call(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), flags) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(src))


def _exchange(dir_fd: int, a: str, b: str) -> bool:
    """Swap the two names atomically; False where the C library or filesystem cannot."""
    return _rename2(dir_fd, a, dir_fd, b, _RENAME_EXCHANGE)


def rename_noreplace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
    """Rename src to dst unless dst exists (FileExistsError), in one step (renameat2's
    RENAME_NOREPLACE); False where the C library or the filesystem cannot."""
    return _rename2(_AT_FDCWD, src, _AT_FDCWD, dst, _RENAME_NOREPLACE)


def copy_fd(src: int, dst: int) -> None:
    """Copy from src's offset to its end into dst, in the kernel where it can (copy_file_range);
    across filesystems where it cannot (EXDEV on older kernels, or filesystems without it),
    through a buffer, from the start again."""
    start_src, start_dst = os.lseek(src, 0, os.SEEK_CUR), os.lseek(dst, 0, os.SEEK_CUR)
    progress = writeback.Writeback(dst, start_dst)  # a large copy goes to disk as it is made
    end = start_dst
    try:
        while n := os.copy_file_range(src, dst, writeback.EVERY):
            end += n
            progress.written_to(end)
        return
    except OSError:
        os.lseek(src, start_src, os.SEEK_SET)
        os.lseek(dst, start_dst, os.SEEK_SET)
        os.ftruncate(dst, start_dst)
    while chunk := os.read(src, _COPY_CHUNK):
        writeback.write_all(dst, chunk)


def files_under(root: Path, pathspecs: Sequence[str]) -> list[str]:
    """Every non-directory entry (files and symlinks, never followed) under the given paths,
    relative to root; .git is skipped. Paths are taken relative to the current directory."""
    out: set[str] = set()
    for spec in pathspecs:
        rel = os.path.relpath(os.path.join(os.getcwd(), spec), root)
        if rel != ".":
            validate_repo_path(rel)
        full = os.path.join(root, rel)
        if os.path.islink(full) or os.path.isfile(full):
            out.add(rel)
            continue
        if not os.path.isdir(full):
            raise UsageError(f"{spec} does not exist", hint="name files or directories in the work tree")
        for dirpath, dirs, names in os.walk(full):
            dirs[:] = [d for d in dirs if d != ".git"]
            out.update(os.path.relpath(os.path.join(dirpath, n), root) for n in names)
    return sorted(out)
