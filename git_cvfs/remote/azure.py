"""az:// archive on azure-storage-blob: az://account/container/prefix."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, LinearRetry

from git_cvfs.crash import crash_point
from git_cvfs.errors import ArchiveError, ConfigError, ObjectMissingError, UnreachableError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.output import STREAMED_FROM, moved
from git_cvfs.remote.archive import (
    CLOUD,
    AlreadyStored,
    ObjectInfo,
    Stored,
    confirm_stored,
    damaged,
    hash_fd,
    pwrite_all,
)

BLOCK = 8 << 20  # a Put Blob up to this size, blocks of it above (the service's MD5 comes with a Put Blob only)


def _retry(attempts: int) -> LinearRetry:
    # The SDK's default (exponential, 15 s first backoff) turns one transient 503 into
    # ~19 s of silence. Linear 0.5 s steps with jitter survive a few faults in ~2 s
    # and then report the cause; transfer.attempts counts the first try too.
    # The stubs say int; the SDK takes seconds as a float (sub-second steps are the point).
    return LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=attempts - 1)  # type: ignore[arg-type]


def _connection_string_account(conn: str) -> str | None:
    for part in conn.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accountname":
            return value.strip()
    return None


class _Span(io.RawIOBase):
    """Bytes [start, start + length) of an open file as a request body, read in the pieces the
    HTTP library asks for (no copy of the whole body in memory); seekable, so a request the
    pipeline retries sends it again from its start. len() is the span's length, which is what
    requests takes for Content-Length."""

    def __init__(self, fd: int, start: int, length: int) -> None:
        super().__init__()
        self._fd, self._start, self._length, self._pos = fd, start, length, 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(0, base + offset), self._length)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._length - self._pos]
        n = os.preadv(self._fd, [view], self._start + self._pos) if view else 0
        self._pos += n
        return n


def _md5(fd: int, start: int, length: int) -> bytes:
    """The MD5 of the span, for the service to check the body against."""
    return hash_fd(hashlib.md5(usedforsecurity=False), fd, start, length).digest()


def _if_missing() -> Any:
    from azure.storage.blob._generated.models import ModifiedAccessConditions

    return ModifiedAccessConditions(if_none_match="*")


def _response_headers(response: Any, deserialized: Any, headers: dict[str, Any]) -> dict[str, Any]:
    return headers


def _error_code(exc: HttpResponseError) -> str:
    """The service's error code (x-ms-error-code) and message, where the generated operations
    leave it in the response rather than on the exception."""
    response = getattr(exc, "response", None)
    code = getattr(exc, "error_code", None) or (
        response.headers.get("x-ms-error-code") if response is not None else None
    )
    return f"{code or ''} {exc.message}"


def _close(body: object) -> None:
    """Give the connection back (a body left part read would hold it until collected)."""
    response = getattr(getattr(body, "response", None), "internal_response", None)
    if response is not None:
        response.close()


def _quoted(etag: str) -> str:
    """Listings give etags bare, blob properties quoted: one form everywhere, as recorded in rows."""
    return etag if etag.startswith('"') else f'"{etag}"'


class AzureArchive:
    capabilities = CLOUD

    def __init__(self, settings: ArchiveSettings, *, concurrency: int = 8) -> None:
        parts = urlsplit(settings.url)
        path = parts.path.strip("/").split("/", 1)
        if not parts.netloc or not path[0]:
            raise ConfigError(
                f"archive {settings.name!r}: {settings.url!r} needs an account and a container",
                hint="use az://ACCOUNT/CONTAINER/prefix",
            )
        self.name = settings.name
        self.url = settings.url.rstrip("/")
        self.account = parts.netloc
        self.container_name = path[0]
        self.prefix = path[1].strip("/") if len(path) > 1 else ""
        self.concurrency = concurrency
        self.attempts = settings.attempts
        common: dict[str, Any] = {
            "retry_policy": _retry(settings.attempts),
            "connection_timeout": min(10, settings.timeout),
            "read_timeout": settings.timeout,
        }
        self.service = self._client(settings, common)
        self.container = self.service.get_container_client(self.container_name)

    def _client(self, settings: ArchiveSettings, common: dict[str, Any]) -> BlobServiceClient:
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn and _connection_string_account(conn) in (None, self.account):
            try:
                return BlobServiceClient.from_connection_string(conn, **common)
            except ValueError as exc:  # the SDK's word for a malformed string; never print the string itself
                raise ArchiveError(
                    f"archive {self.name} ({self.url}): AZURE_STORAGE_CONNECTION_STRING is malformed ({exc})",
                    hint="copy the connection string again from the storage account's Access keys page",
                ) from None
        account_url = settings.endpoint or f"https://{self.account}.blob.core.windows.net"
        key = os.environ.get("AZURE_STORAGE_KEY") or os.environ.get("AZURE_STORAGE_ACCOUNT_KEY")
        if key:
            return BlobServiceClient(
                account_url, credential={"account_name": self.account, "account_key": key}, **common
            )
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise ArchiveError(
                f"archive {self.name} ({self.url}): no Azure credentials found",
                hint="set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY (or .cvfs/secrets.env), "
                "or pip install azure-identity to use your Azure login",
            ) from None
        try:
            return BlobServiceClient(account_url, credential=DefaultAzureCredential(), **common)
        except ValueError as exc:  # "Token credential is only supported with HTTPS."
            raise ConfigError(
                f"archive {self.name} ({self.url}): cannot use your Azure login with {account_url}: {exc}",
                hint=f"use an https endpoint (archive.{self.name}.endpoint), or an account key (AZURE_STORAGE_KEY)",
            ) from None

    def _blob(self, key: str) -> Any:
        return self.container.get_blob_client(f"{self.prefix}/{key}" if self.prefix else key)

    def _fail(self, op: str, key: str, exc: Exception) -> ArchiveError:
        cause = getattr(exc, "reason", None) or type(exc).__name__
        message = str(getattr(exc, "message", "") or "").splitlines()
        detail = f"{cause}" + (f": {message[0]}" if message and message[0] else "")
        # No connection, or no answer in time (after the SDK's retries).
        kind = UnreachableError if isinstance(exc, ServiceRequestError | ServiceResponseError) else ArchiveError
        return kind(
            f"archive {self.name} ({self.url}) is unreachable or refused {op} of {key}: {detail}",
            hint="check the account, container and credentials (`git cvfs doctor --probe`)",
        )

    def probe(self, *, create: bool = False) -> str:
        where = self.service.url.rstrip("/")
        try:
            self.container.get_container_properties()
            return f"container {self.container_name} answers at {where}"
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None)
            if code not in ("ContainerNotFound", None):
                # ResourceNotFound, InvalidUri...: the service answered for some other path,
                # as when the endpoint leaves out the account (Azurite wants /ACCOUNT).
                raise ArchiveError(
                    f"archive {self.name} ({self.url}): {where} does not know container {self.container_name} ({code})",
                    hint=f"check archive.{self.name}.endpoint: for Azurite it ends in the account name "
                    "(http://127.0.0.1:10000/devstoreaccount1)",
                ) from None
        except (AzureError, OSError) as exc:
            raise self._fail("GET PROPERTIES", self.container_name, exc) from None
        if not create:
            raise ArchiveError(
                f"archive {self.name} ({self.url}): container {self.container_name} does not exist at {where}",
                hint=f"check the container name and archive.{self.name}.endpoint, or create it "
                f"(`az storage container create --account-name {self.account} -n {self.container_name}`)",
            )
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        except (AzureError, OSError) as exc:
            raise self._fail("CREATE CONTAINER", self.container_name, exc) from None
        return f"created container {self.container_name} at {where}"

    def _properties(self, key: str) -> Any:
        """The blob's properties (None when absent)."""
        try:
            return self._blob(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except (AzureError, OSError) as exc:
            raise self._fail("HEAD", key, exc) from None

    def head(self, key: str) -> ObjectInfo | None:
        props = self._properties(key)
        return None if props is None else ObjectInfo(key, int(props.size), _quoted(str(props.etag)))

    def stored(self, key: str) -> Stored | None:
        """The blob's properties with its Content-MD5, which the service computes over the bytes
        of a single Put Blob (objects up to BLOCK bytes here); block uploads have none."""
        props = self._properties(key)
        if props is None:
            return None
        md5 = props.content_settings.content_md5 if props.content_settings else None
        digests = {"md5": bytes(md5).hex()} if md5 else {}
        return Stored(ObjectInfo(key, int(props.size), _quoted(str(props.etag))), digests)

    def put_file(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo:
        """One Put Blob up to BLOCK bytes, else blocks sent side by side and then committed.
        Every request carries its body's MD5 (transactional), so the service refuses a body
        altered on the way instead of storing it; bodies are read from the file as they are
        sent, never held whole (upload_blob holds each 8 MiB block: a push of a 72 MiB object
        and six of 12 MiB peaked at 180 MB through it, 56-59 MB this way).
        A blob that must not exist yet (existing is None) is created conditionally: a racing
        writer's blob is never replaced."""
        blob = self._blob(key)
        create = existing is None
        etag: str | None = None
        try:
            with open(path, "rb") as f:
                if size <= BLOCK:
                    headers = blob._client.block_blob.upload(
                        content_length=size,
                        body=_Span(f.fileno(), 0, size),
                        transactional_content_md5=_md5(f.fileno(), 0, size),
                        modified_access_conditions=_if_missing() if create else None,
                        cls=_response_headers,
                    )
                    etag = headers.get("ETag")
                else:
                    self._put_blocks(blob, f.fileno(), size, create=create)
        except ResourceExistsError:
            raise AlreadyStored from None  # someone else's blob: the caller verifies it
        except HttpResponseError as exc:
            if "md5" in _error_code(exc).lower():
                raise damaged(self, key, "refused the body as damaged in transit") from None
            raise self._fail("PUT", key, exc) from None
        except (AzureError, OSError) as exc:
            raise self._fail("PUT", key, exc) from None
        if etag:
            # One Put Blob whose MD5 the service checked: exactly these bytes are stored.
            return ObjectInfo(key, size, _quoted(etag))
        return confirm_stored(self, key, size)  # block uploads, or a racing writer's blob

    def _put_blocks(self, blob: Any, fd: int, size: int, *, create: bool) -> None:
        count = -(-size // BLOCK)
        # The SDK's own form: a fresh random id per block, so a racing or killed upload's
        # blocks are never mixed into this blob, and of one length (48 digits) with the blocks
        # an upload through the SDK left uncommitted (the service refuses mixed lengths).
        names = [f"{uuid.uuid4().int:048d}" for _ in range(count)]
        staged = [0]

        def stage(n: int) -> None:
            start = n * BLOCK
            length = min(BLOCK, size - start)
            blob._client.block_blob.stage_block(
                block_id=base64.b64encode(names[n].encode()).decode(),
                content_length=length,
                body=_Span(fd, start, length),
                transactional_content_md5=_md5(fd, start, length),
            )
            if size >= STREAMED_FROM:  # the progress line, as the blocks go
                moved(length)
            staged[0] += 1
            if staged[0] < count:
                crash_point("azure:mid-blocks")

        with ThreadPoolExecutor(max_workers=min(self.concurrency, count)) as pool:
            futures = [pool.submit(stage, n) for n in range(count)]
            try:
                for future in futures:
                    future.result()
            finally:
                for future in futures:
                    future.cancel()  # the first failure ends the upload; what was staged expires
        match = {"match_condition": MatchConditions.IfMissing} if create else {}
        blob.commit_block_list([BlobBlock(name) for name in names], **match)

    def _body(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        """The blob's bytes from start (to end, exclusive, if given) as the response body arrives,
        in the transport's pieces (256 KiB), exactly as stored (no content decoding). The SDK's
        download_blob reads each 8 MiB chunk whole before handing it over: 8 threads fetching
        ranges of a 1 GiB object held about 200 MB. This is the generated operation the SDK's own
        downloader calls, without its gathering; a test runs it against Azurite."""
        if end is not None:
            span: str | None = f"bytes={start}-{end - 1}"
        else:
            span = f"bytes={start}-" if start else None  # the rest of the blob, or all of it
        return self._blob(key)._client.blob.download(range=span, decompress=False)  # type: ignore[no-any-return]

    def _stream(self, key: str, start: int, end: int, write: Callable[[bytes, int], int], *, ranged: bool) -> int:
        """Write the bytes [start, end) through write(piece, offset) -> next offset, and the offset
        reached. A body cut off part way is asked for again from where it stopped, within
        transfer.attempts. Unranged (a whole object), at most one byte past end is written:
        a longer blob then fails the caller's size check, without reading the rest of it."""
        offset = start
        for attempt in range(1, self.attempts + 1):
            try:
                body = self._body(key, offset, end if ranged else None)
            except ResourceNotFoundError:
                raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
            except (AzureError, OSError) as exc:  # after the pipeline's own retries
                raise self._fail("GET", key, exc) from None
            try:
                for piece in body:
                    if offset + len(piece) > end:
                        if ranged:
                            raise ArchiveError(
                                f"archive {self.name}: {self.url}/{key} sent more than the {end - start} bytes asked for"
                            )
                        return write(piece[: end + 1 - offset], offset)
                    offset = write(piece, offset)
            except AzureError as exc:  # the body cut off or garbled on the way (the SDK wraps those)
                if attempt == self.attempts:
                    raise self._fail("GET", key, exc) from None
                continue
            except OSError as exc:  # writing it here: not the archive's fault, not worth asking again
                raise self._fail("GET", key, exc) from None
            finally:
                _close(body)
            return offset
        return offset  # not reached: the last attempt returns or raises

    def download_to(self, key: str, out: BinaryIO, size: int) -> None:
        def append(piece: bytes, offset: int) -> int:
            out.write(piece)
            return offset + len(piece)

        self._stream(key, 0, size, append, ranged=False)
        out.flush()

    def read_range(self, key: str, fd: int, start: int, length: int) -> None:
        offset = self._stream(key, start, start + length, lambda piece, at: pwrite_all(fd, piece, at), ranged=True)
        if offset != start + length:
            raise ArchiveError(
                f"archive {self.name}: {self.url}/{key} ended at byte {offset}, expected {start + length}"
            )

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for blob in self.container.list_blobs(name_starts_with=full):
                modified = blob.last_modified
                yield ObjectInfo(
                    blob.name[strip:],
                    int(blob.size),
                    _quoted(str(blob.etag)),
                    modified.timestamp() if modified is not None else None,
                )
        except (AzureError, OSError) as exc:
            raise self._fail("LIST", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete_blob()
        except ResourceNotFoundError:
            pass
        except (AzureError, OSError) as exc:
            raise self._fail("DELETE", key, exc) from None
