"""The Archive protocol every backend implements, chosen by URL scheme."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from git_cvfs.errors import ConfigError
from git_cvfs.format.ref import validate_hex
from git_cvfs.local.config import ArchiveSettings


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


def object_key(hex_digest: str) -> str:
    validate_hex(hex_digest)
    return f"objects/{hex_digest[0:2]}/{hex_digest[2:4]}/{hex_digest}"


class Archive(Protocol):
    name: str
    url: str

    def head(self, key: str) -> ObjectInfo | None: ...

    def put_file(self, key: str, path: Path, size: int) -> ObjectInfo:
        """Store path under key unless an object is already there (create-if-absent)."""
        ...

    def get_into(self, key: str, sink: Callable[[bytes], None]) -> None:
        """Stream the object's bytes to sink; ObjectMissingError when absent."""
        ...

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...


def open_archive(settings: ArchiveSettings) -> Archive:
    scheme = urlsplit(settings.url).scheme
    if scheme == "file":
        from git_cvfs.remote.filedir import FileArchive

        return FileArchive(settings)
    raise ConfigError(
        f"archive {settings.name!r} has an unsupported URL {settings.url!r}",
        hint="use file:///absolute/dir (s3:// and az:// archives are not available in this version)",
    )
