"""file:// archive: a plain directory, the embedded default."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from git_cvfs.errors import ArchiveError, ConfigError, ObjectMissingError
from git_cvfs.local.config import ArchiveSettings, default_archive_url
from git_cvfs.remote.archive import ObjectInfo, confirm_put

# Kernel views and device nodes: never a place for an archive.
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_location(archive: FileArchive, repo_root: Path, git_dirs: list[Path]) -> None:
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


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


class FileArchive:
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

    def head(self, key: str) -> ObjectInfo | None:
        self._require_root()
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, _etag(st))

    def put_file(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo:
        self._require_root()
        dest = self._path(key)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"put-{os.getpid()}-{time.monotonic_ns()}"
        try:
            with open(path, "rb") as src, open(tmp, "xb") as out:
                while True:
                    n = os.copy_file_range(src.fileno(), out.fileno(), 1 << 30) if size else 0
                    if not n:
                        break
                out.flush()
                os.fsync(out.fileno())
            written = tmp.stat().st_size
            if written != size:
                raise ArchiveError(f"archive {self.name}: wrote {written} bytes of {key}, expected {size}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            if existing is not None:
                # A wrong-sized object is a damaged copy: replace it atomically.
                os.replace(tmp, dest)
            else:
                try:
                    os.link(tmp, dest)  # create-if-absent: never overwrite a racing writer's object
                except FileExistsError:
                    if os.stat(dest).st_size != size:
                        os.replace(tmp, dest)  # not a racing writer's copy: a damaged one
        except OSError as exc:
            raise ArchiveError(f"archive {self.name}: cannot write {key}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return confirm_put(self, key, size)

    def open_object(self, key: str) -> BinaryIO | None:
        """The stored object opened for reading (without touching its access time), or None."""
        if not self.root.is_dir():
            return None
        flags = os.O_RDONLY | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(self._path(key), flags | getattr(os, "O_NOATIME", 0))
            except PermissionError:  # O_NOATIME needs ownership
                fd = os.open(self._path(key), flags)
        except OSError:
            return None
        return os.fdopen(fd, "rb")

    def download_to(self, key: str, dest: Path, size: int) -> None:
        self._require_root()
        try:
            src = open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
        except OSError as exc:
            raise ArchiveError(f"archive {self.name}: cannot read {key}: {exc.strerror}") from None
        with src, open(dest, "wb") as out:
            while os.copy_file_range(src.fileno(), out.fileno(), 1 << 30):
                pass

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]:
        self._require_root()
        base = self.root / prefix
        for dirpath, _dirs, files in os.walk(base):
            for name in sorted(files):
                full = Path(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    yield ObjectInfo(str(full.relative_to(self.root)), *_stat_pair(full))

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
