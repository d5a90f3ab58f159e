"""file:// archive: a plain directory, the embedded default."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from git_cvfs.errors import ArchiveError, ConfigError, ObjectMissingError
from git_cvfs.local.config import ArchiveSettings, default_archive_url
from git_cvfs.remote.archive import ObjectInfo, confirm_put


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
        self._create_root = settings.url == default_archive_url()

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
