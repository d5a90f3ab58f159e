"""The filesystem a mount serves: one commit's tree, read-only, every managed file at its real
size, its bytes hydrated from the archives (verified) when a reader opens it."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import mfusepy

from git_cvfs.core.model.hydrate import Hydrator
from git_cvfs.core.model.revision import Entry, RevisionTree
from git_cvfs.errors import CvfsError
from git_cvfs.format.ref import Ref
from git_cvfs.local.git import CatFile

# Plain blobs (not managed) up to this size are served from memory; larger ones from a file.
_IN_MEMORY = 8 << 20
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
READ_ONLY_HINT = "a mount is read-only: for files you can change, `git worktree add DIR REV` or `git cvfs ensure`"


def _refuse(*_: object, **__: object) -> int:
    raise mfusepy.FuseOSError(errno.EROFS)


class MountedTree(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, tree: RevisionTree, hydrator: Hydrator, log: Callable[[str], None]) -> None:
        self.tree = tree
        self.hydrator = hydrator
        self.log = log
        self._uid, self._gid = os.getuid(), os.getgid()
        self._time = tree.time * 1_000_000_000
        self._cat = CatFile(tree.repo)
        self._cat_lock = threading.Lock()
        self._handles: dict[int, tuple[int, bytes | None, Ref | None]] = {}  # fh -> (fd, data, ref)
        self._next_fh = 1
        self._lock = threading.Lock()
        self._warned_write = False

    # -- what the tree holds -----------------------------------------------------------------

    def _entry(self, path: str) -> Entry:
        entry = self.tree.get(path)
        if entry is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        return entry

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        entry = self._entry(path)
        directory = stat.S_ISDIR(entry.mode)
        return {
            "st_mode": entry.mode,
            "st_size": entry.size,
            "st_nlink": 2 if directory else 1,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_atime": self._time,
            "st_mtime": self._time,
            "st_ctime": self._time,
            "st_blocks": (entry.size + 511) // 512,
        }

    def readdir(self, path: str, fh: int) -> list[str]:
        entry = self._entry(path)
        if not stat.S_ISDIR(entry.mode):
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        return [".", "..", *self.tree.children[path.strip("/")]]

    def readlink(self, path: str) -> str:
        entry = self._entry(path)
        if not stat.S_ISLNK(entry.mode):
            raise mfusepy.FuseOSError(errno.EINVAL)
        return self._blob(entry.blob).decode("utf-8", "surrogateescape")

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0, "f_bavail": 0, "f_namemax": 255}

    def _blob(self, blob: str) -> bytes:
        with self._cat_lock:
            _, data = self._cat.read(blob)
        if data is None:
            raise mfusepy.FuseOSError(errno.EIO)
        return data

    # -- reading -----------------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        if flags & _WRITE_FLAGS:
            self._refused(path)
        entry = self._entry(path)
        if stat.S_ISDIR(entry.mode):
            raise mfusepy.FuseOSError(errno.EISDIR)
        fd, data, ref = -1, None, entry.ref
        if ref is None:
            if entry.size <= _IN_MEMORY:
                data = self._blob(entry.blob)
            else:
                fd = self._blob_file(entry.blob)
        else:
            try:
                fd = self.hydrator.open(ref)
            except (CvfsError, OSError) as exc:
                self._failed(path, exc)
                raise mfusepy.FuseOSError(errno.EIO) from None
            self._prefetch_beside(path)
        with self._lock:
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = (fd, data, ref)
        return fh

    def _blob_file(self, blob: str) -> int:
        """A large plain blob, written by git into an unlinked temporary file."""
        tmp = self.hydrator.cache.tmp_path("mount-blob")
        with open(tmp, "wb") as out:
            proc = subprocess.run(["git", "cat-file", "blob", blob], cwd=self.tree.repo.root, stdout=out)
        try:
            if proc.returncode != 0:
                raise mfusepy.FuseOSError(errno.EIO)
            return os.open(tmp, os.O_RDONLY)
        finally:
            tmp.unlink(missing_ok=True)

    def _prefetch_beside(self, path: str) -> None:
        parent = path.strip("/").rpartition("/")[0]
        refs = []
        for name in self.tree.children.get(parent, []):
            entry = self.tree.entries[f"{parent}/{name}" if parent else name]
            if entry.ref is not None:
                refs.append(entry.ref)
        self.hydrator.prefetch(refs)

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        fd, data, _ = self._handles[fh]
        if data is not None:
            return data[offset : offset + size]
        return os.pread(fd, size, offset)

    def release(self, path: str, fh: int) -> int:
        with self._lock:
            fd, _, ref = self._handles.pop(fh)
        if fd >= 0:
            os.close(fd)
        if ref is not None:
            self.hydrator.close(ref)
        return 0

    def _failed(self, path: str, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, CvfsError) else str(exc)
        self.log(f"cannot read {path.strip('/')}: {message}")

    def _refused(self, path: str) -> None:
        if not self._warned_write:
            self._warned_write = True
            self.log(f"refused a write to {path.strip('/')}: {READ_ONLY_HINT}")
        raise mfusepy.FuseOSError(errno.EROFS)

    # -- every change is refused ---------------------------------------------------------------

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        self._refused(path)
        return 0

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        self._refused(path)
        return 0

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        self._refused(path)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self._refused(path)
        return 0

    def unlink(self, path: str) -> int:
        self._refused(path)
        return 0

    def rmdir(self, path: str) -> int:
        self._refused(path)
        return 0

    def rename(self, old: str, new: str) -> int:
        self._refused(old)
        return 0

    def symlink(self, target: str, source: str) -> int:
        self._refused(target)
        return 0

    def link(self, target: str, source: str) -> int:
        self._refused(target)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        self._refused(path)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        self._refused(path)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        self._refused(path)
        return 0

    def mknod(self, path: str, mode: int, dev: int) -> int:
        self._refused(path)
        return 0

    def destroy(self, path: str) -> None:
        self.hydrator.close_all()
        with self._cat_lock:
            self._cat.close()
