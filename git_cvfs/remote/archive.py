"""The Archive protocol every backend implements, chosen by URL scheme."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol
from urllib.parse import urlsplit

from git_cvfs.errors import ArchiveError, ConfigError, IntegrityError, UnreachableError
from git_cvfs.format.ref import validate_hex
from git_cvfs.local.config import ArchiveSettings


class ObjectInfo(NamedTuple):
    key: str
    size: int
    etag: str


# S3 multipart uploads are cut into parts of this size; per-part digests are computed the same way.
PART_SIZE = 16 << 20


class AlreadyStored(ArchiveError):
    """put_file found an object under the key and, creating only if absent, left it there. What
    it holds is unknown until verified (remote/verify.py); then it is kept or replaced."""

    def __init__(self, info: ObjectInfo | None = None) -> None:
        super().__init__("an object is already stored under this key")
        self.info = info


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


def confirm_put(archive: Archive, key: str, size: int) -> ObjectInfo:
    """After an upload, the archive must hold an object of the right size; its answer gives the etag."""
    info = archive.head(key)
    if info is None or info.size != size:
        raise ArchiveError(f"archive {archive.name}: {archive.url}/{key} is missing or has the wrong size after upload")
    return info


def is_directory(url: str) -> bool:
    """A file:// archive: local, no credentials, nothing in transit, asking about an object is a stat."""
    return url.startswith("file:")


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
    from git_cvfs import trace

    if trace.ENABLED:
        _trace_calls(archive)
    if not archive.capabilities.local:
        _watch_calls(archive, settings)
    return archive


def _open(settings: ArchiveSettings, concurrency: int) -> Archive:
    scheme = urlsplit(settings.url).scheme
    if scheme == "file":
        from git_cvfs.remote.filedir import FileArchive

        return FileArchive(settings)
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


_TRACED = ("head", "stored", "put_file", "download_to", "read_range", "list", "delete")


def _trace_calls(archive: Archive) -> None:
    """GIT_CVFS_TRACE: every call to this archive, with its key, outcome and duration, on the
    instance itself (callers still see its own class)."""
    import time

    from git_cvfs.trace import trace

    def traced(method: str, call: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            key = args[0] if args else kwargs.get("key", kwargs.get("prefix", ""))
            extra = f" bytes {args[2]}+{args[3]}" if method == "read_range" and len(args) >= 4 else ""
            start = time.monotonic()
            try:
                result = call(*args, **kwargs)
            except BaseException as exc:
                took = time.monotonic() - start
                trace("archive", f"{archive.name} {method} {key}{extra}: {type(exc).__name__}: {exc} ({took:.3f} s)")
                raise
            took = time.monotonic() - start
            info = result.info if isinstance(result, Stored) else result
            said = " -> none" if result is None and method in ("head", "stored") else ""
            if isinstance(info, ObjectInfo):
                said = f" -> {info.size} bytes, etag {info.etag}"
            trace("archive", f"{archive.name} {method} {key}{extra}{said} ({took:.3f} s)")
            return result

        return run

    trace("archive", f"{archive.name} opened: {archive.url}")
    for method in _TRACED:
        setattr(archive, method, traced(method, getattr(archive, method)))


# A request unanswered this long gets a line on stderr (and again every WAIT_REPEAT seconds),
# so a hung archive is never silence: the user sees what is awaited and when it gives up.
WAIT_NOTICE = float(os.environ.get("GIT_CVFS_WAIT_NOTICE", "5"))
WAIT_REPEAT = 10.0
# Calls that move a whole large object run long while bytes flow; their progress shows that.
_BULK = ("put_file", "download_to")
_BULK_FROM = 16 << 20


class _Waiting:
    """The calls in flight to remote archives, watched by one daemon thread."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._calls: dict[int, tuple[float, str]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self._said = 0.0

    def begin(self, what: str) -> int:
        import time

        with self._lock:
            self._next += 1
            self._calls[self._next] = (time.monotonic(), what)
            if self._thread is None:
                import threading

                self._thread = threading.Thread(target=self._watch, name="cvfs-waiting", daemon=True)
                self._thread.start()
            return self._next

    def end(self, token: int) -> None:
        with self._lock:
            self._calls.pop(token, None)

    def _watch(self) -> None:
        import time

        from git_cvfs import output

        while True:
            time.sleep(1)
            now = time.monotonic()
            with self._lock:
                oldest = min(self._calls.values(), default=None)
            if oldest is None or now - oldest[0] < WAIT_NOTICE or now - self._said < WAIT_REPEAT:
                continue
            self._said = now
            output.info(f"git-cvfs: still waiting for {oldest[1]} ({now - oldest[0]:.0f} s)")


_WAITING = _Waiting()


def _watch_calls(archive: Archive, settings: ArchiveSettings) -> None:
    """Every call to a remote archive is watched: one that goes unanswered is said, with
    when git-cvfs gives up on it (transfer.timeout x transfer.attempts)."""
    limit = f"gives up after about {settings.timeout * settings.attempts:.0f} s: transfer.timeout, transfer.attempts"
    # An archive that did not answer once (after every retry) is not waited on again in this
    # run: 2,000 files against a hung endpoint fail in one timeout, not 2,000 / concurrency.
    gave_up: list[UnreachableError] = []

    def watched(method: str, call: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            if gave_up:
                raise UnreachableError(f"{gave_up[0].message} (not asked again in this run)", hint=gave_up[0].hint)
            if method in _BULK and len(args) >= 3 and isinstance(args[2], int) and args[2] >= _BULK_FROM:
                token = None
            else:
                key = args[0] if args else ""
                token = _WAITING.begin(f"archive {archive.name} ({archive.url}) to answer {method} {key}; {limit}")
            try:
                return call(*args, **kwargs)
            except UnreachableError as exc:
                gave_up.append(exc)
                raise
            finally:
                if token is not None:
                    _WAITING.end(token)

        return run

    for method in _TRACED:
        if method != "list":  # a generator: its requests happen as it is read
            setattr(archive, method, watched(method, getattr(archive, method)))
