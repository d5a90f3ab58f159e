"""file:// archive: a plain directory, the embedded default."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from git_cvfs.crash import fault_point
from git_cvfs.errors import ArchiveError, ConfigError, CvfsError, IntegrityError, ObjectMissingError
from git_cvfs.local import writeback
from git_cvfs.local.config import ArchiveSettings, default_archive_url
from git_cvfs.local.worktree import copy_fd, rename_noreplace
from git_cvfs.remote.archive import (
    DIRECTORY,
    AlreadyStored,
    ObjectInfo,
    PutItem,
    Stored,
    confirm_put,
    hex_of_key,
    pwrite_all,
)

_COPY_CHUNK = 1 << 20
_STAGE_THREADS = min(4, os.cpu_count() or 1)

_PENDING = ArchiveError("not stored")  # a placeholder while a batch is in flight


def _link(source: Path, tmp: Path) -> bool:
    """Hard-link source at tmp; False where that cannot be (another filesystem, a file not ours
    under fs.protected_hardlinks), and the caller copies instead."""
    try:
        os.link(source, tmp)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            return False
        raise
    return True


def _hash_file(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest, size


def _copy_hashing(source: Path, tmp: Path, size: int, *, fsync: bool) -> tuple[hashlib._Hash, int]:
    """Copy source to a new file tmp through one buffer, hashing what is written."""
    digest = hashlib.sha256()
    written = 0
    with open(source, "rb", buffering=0) as src, open(tmp, "xb", buffering=0) as out:
        buf = bytearray(min(_COPY_CHUNK, size + 1))
        progress = writeback.Writeback(out.fileno())  # a large copy goes to disk as it is made
        while n := src.readinto(buf):
            view = memoryview(buf)[:n]
            digest.update(view)
            while view:
                view = view[out.write(view) :]
            written += n
            progress.written_to(written)
        if fsync:
            os.fsync(out.fileno())
    return digest, written


@functools.cache
def _load_syncfs() -> Callable[[Path], None] | None:
    """syncfs(2): flush one filesystem (Linux). It reports write-back errors since Linux 5.8.
    Loaded on first use: ctypes is not worth its import time to every hook and filter."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None

    def syncfs(directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if call(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)

    return syncfs


def _mkdir(path: Path, made: set[Path] | None, mode: int | None = None) -> None:
    """Make path and its missing parents: with the umask's permissions, or, given a mode, with
    exactly that one (an archive shared by a group: see FileArchive._dir_mode)."""
    if made is not None and path in made:
        return
    if mode is None:
        path.mkdir(parents=True, exist_ok=True)
    else:
        _mkdir_with_mode(path, mode)
    if made is not None:
        made.add(path)


def _mkdir_with_mode(path: Path, mode: int) -> None:
    if path.is_dir() or path.parent == path:
        return
    _mkdir_with_mode(path.parent, mode)
    try:
        os.mkdir(path)
    except FileExistsError:
        return  # another writer made it, and set its mode
    os.chmod(path, mode)  # not left to mkdir: the umask would take the group's write bit away


# Kernel views and device nodes: never a place for an archive.
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))


def _check_location(archive: FileArchive, repo_root: Path, git_dirs: list[Path]) -> None:
    """Refuse a directory archive inside the repository or a kernel filesystem.

    .cvfs/config is committed, so anyone who can push may set the URL. Inside .git the
    objects/xx/yy layout would land in git's own object store; inside the work tree the
    objects would be picked up by `git add -A`.
    """
    where = Path(os.path.realpath(archive.root))
    bad: str | None = None
    for pseudo in _PSEUDO:
        if where == pseudo or pseudo in where.parents:
            bad = f"{pseudo} is a kernel filesystem"
    for git_dir in git_dirs:
        real = Path(os.path.realpath(git_dir))
        if where == real or real in where.parents:
            bad = "it is inside the repository's .git directory"
    real_root = Path(os.path.realpath(repo_root))
    # The embedded default may sit under a work tree when $HOME itself is one (dotfiles).
    if bad is None and not archive.is_default and (where == real_root or real_root in where.parents):
        bad = "it is inside the work tree"
    if bad is not None:
        raise ConfigError(
            f"archive {archive.name!r}: {archive.url!r} is not a usable archive directory: {bad}",
            hint=f"point archive.{archive.name}.url at a directory outside the repository, e.g. file:///srv/cvfs-archive",
        )


# What link(2) says on a filesystem without hard links: SMB shares, FAT and exFAT disks,
# bucket mounts (rclone, gcsfuse, s3fs).
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK)


def _move_if_absent(tmp: Path, dest: Path) -> None:
    """Create-if-absent without a hard link: renameat2's RENAME_NOREPLACE, or where the
    filesystem lacks that too, a look and a rename. A writer racing into that gap can only
    have put the same bytes there (the key is their hash, and every copy is hashed before it
    is named), so the rename replacing it loses nothing."""
    try:
        if rename_noreplace(tmp, dest):
            return
    except FileExistsError:
        raise AlreadyStored from None
    if os.path.lexists(dest):
        raise AlreadyStored
    os.rename(tmp, dest)


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


class FileArchive:
    capabilities = DIRECTORY

    def __init__(self, settings: ArchiveSettings) -> None:
        parts = urlsplit(settings.url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"archive {settings.name!r}: {settings.url!r} names a host",
                hint="write file:///absolute/path (three slashes)",
            )
        path = unquote(parts.path)
        if not path.startswith("/") or path.rstrip("/") == "":
            raise ConfigError(
                f"archive {settings.name!r}: {settings.url!r} is not an absolute directory other than /",
                hint="write file:///absolute/path/to/archive",
            )
        self.name = settings.name
        self.url = settings.url.rstrip("/")
        self.root = Path(path)
        # The embedded default may be created on demand; a configured directory that is
        # missing may be an unmounted disk, and writing beside it would hide the data.
        self.is_default = settings.url == default_archive_url()
        self._create_root = self.is_default
        self._link_source: Path | None = None
        self._shared_mode: int | None = None
        self._root_looked_at = False

    def _dir_mode(self) -> int | None:
        """The mode for directories made in the archive when its root is shared (group- or
        world-writable, as a team's /srv/archive is): the root's own, so everyone who may write
        the root may write below it, whoever made each directory (git's core.sharedRepository
        does the same for a repository). None otherwise: the umask decides, as for any file."""
        if not self._root_looked_at:
            try:
                mode = stat.S_IMODE(os.stat(self.root).st_mode)
            except OSError:
                return None  # not there: the write that follows says so
            self._shared_mode = mode if mode & 0o022 else None
            self._root_looked_at = True
        return self._shared_mode

    def link_from(self, cache_objects: Path) -> None:
        self._link_source = cache_objects

    def _path(self, key: str) -> Path:
        return self.root / key

    def _require_root(self) -> None:
        if self.root.is_dir():
            return
        if self._create_root:
            self.root.mkdir(parents=True, exist_ok=True)
            return
        raise ArchiveError(
            f"archive {self.name} ({self.url}) is unreachable: directory {self.root} does not exist",
            hint=f"mount or create it (mkdir -p {self.root}), or point archive.{self.name}.url elsewhere",
        )

    def check_placement(self, repo_root: Path, git_dirs: list[Path]) -> None:
        _check_location(self, repo_root, git_dirs)

    def probe(self, *, create: bool = False) -> str:
        if not self.root.is_dir():
            if not create and not self._create_root:
                self._require_root()
            self.root.mkdir(parents=True, exist_ok=True)
            return f"created directory {self.root}"
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ArchiveError(
                f"archive {self.name} ({self.url}): directory {self.root} is not writable by you",
                hint=f"check its permissions (ls -ld {self.root})",
            )
        return f"directory {self.root} exists"

    def head(self, key: str) -> ObjectInfo | None:
        self._require_root()
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, _etag(st))

    def stored(self, key: str) -> Stored | None:
        """The object with the SHA-256 of the file as it is now: a directory's etag (size and
        mtime) proves nothing, since anyone who can write there can set the mtime back."""
        self._require_root()
        f = self.open_object(key)
        if f is None:
            return None
        with f:
            st = os.fstat(f.fileno())
            digest = hashlib.sha256()
            while chunk := f.read(_COPY_CHUNK):
                digest.update(chunk)
        return Stored(ObjectInfo(key, st.st_size, _etag(st)), {"sha256": digest.hexdigest()})

    def put_file(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo:
        self._require_root()
        return self._place(key, self._stage(key, path, size, fsync=True), size, existing)

    def put_files(self, items: Sequence[PutItem]) -> list[ObjectInfo | CvfsError]:
        """Store many objects with one flush of the disk instead of one per object.

        Each is copied into tmp/, then one syncfs makes all those bytes durable, then each
        goes in place as put_file would, then a second syncfs makes the names durable. An
        fsync per object costs a journal commit each (docs/PERFORMANCE.md has what that
        costs a commit of 2,000 small files). No object is put in place before its bytes are
        on disk; if the flush fails, none is. Where syncfs is missing (not Linux), this is
        put_file for each.
        """
        syncfs = _load_syncfs()
        if syncfs is None:
            return [self._put_or_error(key, path, size, existing) for key, path, size, existing in items]
        self._require_root()
        results: list[ObjectInfo | CvfsError] = []
        staged: dict[int, Path] = {}
        made: set[Path] = set()  # directories known to exist: one mkdir each, not one per object
        try:

            def stage(item: PutItem) -> Path | CvfsError:
                key, path, size, _ = item
                try:
                    # The object's directory too, here on the pool: made one by one where the
                    # objects are put in place, 2,000 new directories took 0.13-0.2 s of a commit.
                    _mkdir(self._path(key).parent, made, self._dir_mode())
                    return self._stage(key, path, size, fsync=False, made=made)
                except OSError as exc:
                    return self._write_error(key, exc)
                except CvfsError as exc:  # unreadable, unwritable, or not the object
                    return exc

            # Hashing and copying release the GIL: a few threads keep every core busy. (Imported
            # here: the filter process reads this archive and never stores through it.)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=_STAGE_THREADS) as pool:
                for i, outcome in enumerate(pool.map(stage, items)):
                    if isinstance(outcome, CvfsError):
                        results.append(outcome)
                    else:
                        staged[i] = outcome
                        results.append(_PENDING)
            if staged:
                try:
                    fault_point("archive:flush")
                    syncfs(self.root)
                except OSError as exc:
                    failed = ArchiveError(f"archive {self.name}: cannot flush {self.root}: {exc.strerror or exc}")
                    for i in staged:
                        results[i] = failed
                    return results
                for i, tmp in list(staged.items()):
                    key, _, size, existing = items[i]
                    del staged[i]  # _place owns the tmp file now
                    try:
                        results[i] = self._place(key, tmp, size, existing, made=made)
                    except ArchiveError as exc:
                        results[i] = exc
                with contextlib.suppress(OSError):
                    syncfs(self.root)  # the names; an object whose name is lost is put again next time
        finally:
            for tmp in staged.values():
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return results

    def _put_or_error(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo | CvfsError:
        try:
            return self.put_file(key, path, size, existing)
        except CvfsError as exc:
            return exc

    def _stage(self, key: str, path: Path, size: int, *, fsync: bool, made: set[Path] | None = None) -> Path:
        """A copy of path in tmp/, whole, hashed and checked against the key (so the object is
        known to be these bytes before it gets its name), and flushed when asked; the caller
        removes it. A cache object, when link_from allows, is a hard link (no bytes written),
        read back and hashed; anything else is copied through a buffer, hashed as it is
        written (works across filesystems, and costs no second read)."""
        tmp_dir = self.root / "tmp"
        tmp = tmp_dir / f"put-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        try:
            _mkdir(tmp_dir, made, self._dir_mode())
            if self._link_source is not None and path.parent.parent.parent == self._link_source and _link(path, tmp):
                # the cache's file, whose bytes were made durable when it was stored: what the
                # archive now holds is hashed as it is, read back, before it gets its name
                digest, written = _hash_file(tmp)
            else:
                digest, written = _copy_hashing(path, tmp, size, fsync=fsync)
            expect = hex_of_key(key)
            if written != size or (expect is not None and digest.hexdigest() != expect):
                raise IntegrityError(
                    f"archive {self.name}: the copy of {key} written to {tmp_dir} is not that object "
                    f"({written} bytes); the local copy changed or the disk is failing",
                    hint="run `git cvfs fsck` to check the cache, then push again",
                )
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if isinstance(exc, OSError):
                raise self._write_error(key, exc) from None
            raise
        return tmp

    def _place(
        self, key: str, tmp: Path, size: int, existing: ObjectInfo | None, *, made: set[Path] | None = None
    ) -> ObjectInfo:
        """Give a staged copy its name, then remove the staged name."""
        dest = self._path(key)
        try:
            _mkdir(dest.parent, made, self._dir_mode())
            os.chmod(tmp, 0o444)
            if existing is not None:
                # The caller found a copy that is not this object: replace it atomically.
                os.replace(tmp, dest)
            else:
                try:
                    os.link(tmp, dest)  # create-if-absent: never overwrite a racing writer's object
                except FileExistsError:
                    raise AlreadyStored from None  # the caller hashes it, and keeps or replaces it
                except OSError as exc:
                    if exc.errno not in _NO_HARD_LINKS:
                        raise
                    _move_if_absent(tmp, dest)
        except OSError as exc:
            raise self._write_error(key, exc) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return confirm_put(self, key, size)

    def _write_error(self, key: str, exc: OSError) -> ArchiveError:
        return ArchiveError(f"archive {self.name}: cannot write {key}: {exc.strerror or exc}")

    def open_object(self, key: str) -> BinaryIO | None:
        """The stored object opened for reading (without touching its access time), or None.

        Unbuffered: callers read whole objects or large chunks, and a checkout opens one per
        file, so a buffered reader's set-up (an isatty and an lseek) would be wasted."""
        path = f"{self.root}/{key}"  # _path(key) as a string: the Path join cost ~17 us a file here
        flags = os.O_RDONLY | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
            except PermissionError:  # O_NOATIME needs ownership
                fd = os.open(path, flags)
        except OSError:  # missing object, or the archive's directory itself is gone
            return None
        return open(fd, "rb", buffering=0)

    def download_to(self, key: str, out: BinaryIO, size: int) -> None:
        self._require_root()
        try:
            src = open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
        except OSError as exc:
            raise ArchiveError(f"archive {self.name}: cannot read {key}: {exc.strerror}") from None
        with src:
            out.flush()
            copy_fd(src.fileno(), out.fileno())

    def read_range(self, key: str, fd: int, start: int, length: int) -> None:
        self._require_root()
        src = self.open_object(key)
        if src is None:
            raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist")
        offset, end = start, start + length
        with src:
            while offset < end and (chunk := os.pread(src.fileno(), min(_COPY_CHUNK, end - offset), offset)):
                offset = pwrite_all(fd, chunk, offset)
        if offset != end:
            raise ArchiveError(f"archive {self.name}: {self.url}/{key} ended at byte {offset}, expected {end}")

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]:
        self._require_root()
        base = self.root / prefix
        for dirpath, _dirs, files in os.walk(base):
            for name in sorted(files):
                full = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    st = full.stat()
                    yield ObjectInfo(str(full.relative_to(self.root)), st.st_size, _etag(st), st.st_mtime)

    def delete(self, key: str) -> None:
        self._require_root()
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise ArchiveError(f"archive {self.name}: cannot delete {key}: {exc.strerror}") from None


def _stat_pair(path: Path) -> tuple[int, str]:
    st = path.stat()
    return st.st_size, _etag(st)
