"""A directory mounted through FUSE with everything but hard links (link(2) fails with EPERM), as
on SMB shares, FAT and exFAT disks, and bucket mounts (rclone, gcsfuse, s3fs).

    python -m tests.nolink_fs SOURCE MOUNTPOINT      # serves until unmounted (fusermount3 -u)
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import mfusepy


class NoLinks(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True  # times in nanoseconds (getattr and utimens)

    def __init__(self, source: str) -> None:
        self.source = source

    def _p(self, path: str) -> str:
        return os.path.join(self.source, path.lstrip("/"))

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        st = os.lstat(self._p(path))
        keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size")
        times = {key: getattr(st, f"{key}_ns") for key in ("st_atime", "st_mtime", "st_ctime")}
        return {**{key: getattr(st, key) for key in keys}, **times}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._p(path))]

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._p(path), mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._p(path))

    def unlink(self, path: str) -> None:
        os.unlink(self._p(path))

    def rename(self, old: str, new: str) -> None:
        os.rename(self._p(old), self._p(new))

    def link(self, target: str, source: str) -> None:
        raise mfusepy.FuseOSError(errno.EPERM)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(self._p(path), mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.chown(self._p(path), uid, gid)

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        if times is None:
            os.utime(self._p(path))
        else:
            os.utime(self._p(path), ns=times)

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        os.truncate(self._p(path), length)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        return os.open(self._p(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

    def open(self, path: str, flags: int) -> int:
        return os.open(self._p(path), flags & ~(os.O_CREAT | os.O_EXCL))

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        os.fsync(fh)

    def flush(self, path: str, fh: int) -> None:
        pass

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._p(path))
        keys = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree", "f_namemax")
        return {key: getattr(st, key) for key in keys}


if __name__ == "__main__":
    source, mountpoint = sys.argv[1:3]
    mfusepy.FUSE(NoLinks(source), mountpoint, foreground=True, nothreads=True, default_permissions=True)
