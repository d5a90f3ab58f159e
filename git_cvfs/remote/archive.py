"""The Archive protocol every backend implements, chosen by URL scheme."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol, TypeVar
from urllib.parse import urlsplit

from git_cvfs.errors import ArchiveError, ConfigError, CvfsError, IntegrityError
from git_cvfs.format.ref import validate_hex
from git_cvfs.local.config import ArchiveSettings

H = TypeVar("H", bound="hashlib._Hash")


class ObjectInfo(NamedTuple):
    key: str
    size: int
    etag: str
    modified: float | None = None  # when the archive stored it (seconds since the epoch), as list() says


# gc writes a new object here before it deletes anything: a pre-push hook that finds its etag
# changed stops trusting this machine's record of what the archive held (local/archived_log.py).
GC_EPOCH_KEY = "gc/epoch"


# S3 multipart uploads are cut into parts of this size; per-part digests are computed the same way.
PART_SIZE = 16 << 20


class AlreadyStored(ArchiveError):
    """put_file found an object under the key and, creating only if absent, left it there. What
    it holds is unknown until verified (remote/verify.py); then it is kept or replaced."""

    def __init__(self, info: ObjectInfo | None = None) -> None:
        super().__init__("an object is already stored under this key")
        self.info = info


def hash_fd(digest: H, fd: int, start: int = 0, length: int | None = None) -> H:
    """digest fed the file's bytes from start: `length` of them (OSError if the file ends
    sooner: it changed while it was read), or else to its end. Read with pread in 1 MiB pieces
    into one buffer; the file's offset is left where it was."""
    view = memoryview(bytearray(1 << 20))
    done = 0
    while length is None or done < length:
        n = os.preadv(fd, [view if length is None else view[: length - done]], start + done)
        if n == 0:
            if length is None:
                break
            raise OSError(f"the file ended {length - done} bytes early (it changed while it was read)")
        digest.update(view[:n])
        done += n
    return digest


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> int:
    """Write all of data at offset (pwrite may write less); the offset after it."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
    return offset


class Capabilities(NamedTuple):
    """What a backend can do, so callers ask it instead of looking at its URL or class."""

    local: bool  # a directory on this machine: reads are local, no credentials, one try on bad bytes
    # The archive itself assigns etags and changes them whenever the object is written (S3,
    # Azure): an etag that has not moved since bytes were verified means the same bytes.
    # A directory archive's etag is size and mtime, which anyone may set back.
    etag_is_version: bool


class Stored(NamedTuple):
    """An object as the archive describes it, with digests the archive computed over the stored
    bytes, by kind: "sha256" (hex, the whole object), "md5" (hex, the whole object),
    "sha256-parts" / "md5-parts" (S3's composite of per-part digests, "<digest>-<parts>",
    parts of PART_SIZE bytes)."""

    info: ObjectInfo
    digests: dict[str, str]


def object_key(hex_digest: str) -> str:
    validate_hex(hex_digest)
    return f"objects/{hex_digest[0:2]}/{hex_digest[2:4]}/{hex_digest}"


def hex_of_key(key: str) -> str | None:
    """The oid an object key names (its bytes must hash to it); None for other keys (doctor's test object)."""
    name = key.rsplit("/", 1)[-1]
    return name if key == f"objects/{name[0:2]}/{name[2:4]}/{name}" and _is_hex64(name) else None


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class Archive(Protocol):
    name: str
    url: str
    capabilities: Capabilities

    def head(self, key: str) -> ObjectInfo | None: ...

    def stored(self, key: str) -> Stored | None:
        """What head() says, with the digests the archive keeps of the stored bytes (none, if it
        keeps none). A directory archive hashes its file: that read is the check."""
        ...

    def put_file(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo:
        """Store path under key, and make sure the archive received exactly its bytes. existing
        is what the caller found there: None means create-if-absent, and an object found there
        raises AlreadyStored (the caller verifies it); otherwise that object is replaced.
        Returns the stored object, its etag from the archive."""
        ...

    def download_to(self, key: str, out: BinaryIO, size: int) -> None:
        """Write the object's bytes into `out`, an empty, seekable file opened for writing (in
        any order: ranged parallel GETs are fine; it is flushed, not closed); size is what the
        ref says, a hint for choosing how. ObjectMissingError when absent. The caller verifies
        the hash before using the bytes."""
        ...

    def read_range(self, key: str, fd: int, start: int, length: int) -> None:
        """Write bytes [start, start + length) of the object into the file `fd` at the same offsets
        (os.pwrite: callers read several ranges of one file at once). ObjectMissingError when
        absent; a body cut short is an ArchiveError."""
        ...

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def probe(self, *, create: bool = False) -> str:
        """Show that the location itself exists and answers: the directory, bucket or container
        (an absent object proves nothing: a missing bucket or a wrong endpoint path answers
        "no such key" too). With create, make it when it is missing. Returns what was found;
        raises ArchiveError, with the fix, when it is missing or refuses."""
        ...


# (key, the file to store, its size, what the caller found under the key: see put_file)
PutItem = tuple[str, Path, int, ObjectInfo | None]


class LocalArchive(Archive, Protocol):
    """An archive whose objects are files on this machine (capabilities.local): read in place,
    stored many at a time, and never somewhere a repository may not point it."""

    def open_object(self, key: str) -> BinaryIO | None:
        """The stored object opened for reading (None when absent): callers hash what they read."""
        ...

    def put_files(self, items: Sequence[PutItem]) -> list[ObjectInfo | CvfsError]:
        """put_file for many small objects at once, one flush of the disk for them all; each
        item's result in order (AlreadyStored, as put_file raises it, among the errors)."""
        ...

    def check_placement(self, repo_root: Path, git_dirs: list[Path]) -> None:
        """ConfigError when the archive sits where no archive may: inside the repository or its
        git directory (a committed setting may name it), or a kernel filesystem."""
        ...

    def link_from(self, cache_objects: Path) -> None:
        """Objects put from under cache_objects may be stored as a hard link to the cache's file
        instead of a copy: the lean cache drops its copy once the archive holds the object, so
        the bytes would be on this disk once either way, and need not be written twice."""
        ...


def as_local(archive: Archive) -> LocalArchive | None:
    """The archive as a LocalArchive when its capabilities say it is one, else None."""
    if archive.capabilities.local:
        return archive  # type: ignore[return-value]  # a backend that says local implements LocalArchive
    return None


# The two kinds of backend there are: a directory on this machine, and a cloud store.
DIRECTORY = Capabilities(local=True, etag_is_version=False)
CLOUD = Capabilities(local=False, etag_is_version=True)


def capabilities_of(url: str) -> Capabilities:
    """What the backend for this URL can do, without opening it (opening a cloud archive loads
    its SDK: 100 ms that a checkout served from a directory archive need not pay)."""
    return DIRECTORY if urlsplit(url).scheme == "file" else CLOUD


def confirm_put(archive: Archive, key: str, size: int) -> ObjectInfo:
    """After an upload, the archive must hold an object of the right size; its answer gives the etag."""
    info = archive.head(key)
    if info is None or info.size != size:
        raise ArchiveError(f"archive {archive.name}: {archive.url}/{key} is missing or has the wrong size after upload")
    return info


def damaged(archive: Archive, key: str, what: str) -> IntegrityError:
    """An upload the archive refused as altered on the way, or stored wrongly: worth sending again."""
    return IntegrityError(
        f"archive {archive.name}: {archive.url}/{key} {what}",
        hint="something between here and the archive alters requests; check proxies, then push again",
    )


def confirm_stored(archive: Archive, key: str, size: int) -> ObjectInfo:
    """After an upload whose answer does not prove the bytes (multipart, block uploads, a racing
    writer's object): the archive must hold an object of the right size. A wrong one under a
    content address helps no one, so it is deleted and the caller may send it again."""
    info = archive.head(key)
    if info is None or info.size != size:
        archive.delete(key)
        raise damaged(archive, key, "holds no object of the right size")
    return info


def open_archive(settings: ArchiveSettings, *, concurrency: int = 8) -> Archive:
    """The backend for the URL's scheme; cloud SDKs are imported only here, only when used."""
    archive = _open(settings, concurrency)
    from git_cvfs.remote.calls import trace_calls, watch_calls

    trace_calls(archive)  # GIT_CVFS_TRACE
    if not archive.capabilities.local:
        watch_calls(archive, settings)  # a line while one waits; one give-up per run
    return archive


@functools.cache
def _few_heaps() -> None:
    """At most two malloc heaps for the transfer threads (glibc only; elsewhere nothing).

    The SDKs read bodies in pieces of 256 KiB (Azure) to 1 MiB (S3) on transfer.concurrency threads,
    and glibc gives each thread a heap of its own that keeps what was freed in it: over a long
    download those freed chunks pile up, one heap per thread. A 1 GiB download from S3 at
    concurrency 8 peaked at 154-171 MiB, of which Python held 17 at most; with two heaps, 83
    MiB, no slower (boto3 alone is 50). The usual remedy (MALLOC_ARENA_MAX=2) taken in-process,
    before the first transfer thread starts. One heap would save 17 MiB more but cost threads
    that hash side by side 10%; keeping large blocks out of the heaps (M_MMAP_THRESHOLD) would
    cost every 1 MiB read an mmap, 25% on hashing."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
    except (ValueError, OSError):
        return
    import ctypes

    m_arena_max = -8  # malloc.h
    ctypes.CDLL(None).mallopt(m_arena_max, 2)


def _open(settings: ArchiveSettings, concurrency: int) -> Archive:
    scheme = urlsplit(settings.url).scheme
    if scheme == "file":
        from git_cvfs.remote.filedir import FileArchive

        return FileArchive(settings)
    _few_heaps()  # a cloud archive: its transfers run on threads
    if scheme == "s3":
        from git_cvfs.remote.s3 import S3Archive

        return S3Archive(settings, concurrency=concurrency)
    if scheme == "az":
        from git_cvfs.remote.azure import AzureArchive

        return AzureArchive(settings, concurrency=concurrency)
    raise ConfigError(
        f"archive {settings.name!r} has an unsupported URL {settings.url!r}",
        hint="use file:///absolute/dir, s3://bucket/prefix or az://account/container/prefix",
    )
