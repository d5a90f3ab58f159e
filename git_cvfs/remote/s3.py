"""s3:// archive on boto3: Amazon S3 or any S3-compatible store (MinIO, R2, Ceph, moto)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error, RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from git_cvfs.crash import crash_point
from git_cvfs.errors import ArchiveError, ConfigError, ObjectMissingError, UnreachableError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.output import moved
from git_cvfs.remote.archive import (
    CLOUD,
    PART_SIZE,
    AlreadyStored,
    ObjectInfo,
    Stored,
    confirm_stored,
    damaged,
    hash_fd,
    hex_of_key,
    pwrite_all,
)

MULTIPART = 64 << 20  # == output.STREAMED_FROM: multipart uploads report their bytes as they go
PART = PART_SIZE
# Deliberate retries (transfer.attempts): standard mode backs off with jitter (about 0.1 s,
# 0.2 s, 0.4 s...), so a few transient 500/503s or resets cost well under two seconds, then we
# give up with the cause instead of hanging. transfer.timeout bounds each unanswered request.
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_BAD_BODY = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "IncompleteBody"}
_STREAM_ERRORS = (
    IncompleteReadError,
    ResponseStreamingError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProtocolError,
    ConnectionError,
)
# Failures that mean the archive did not answer at all (after botocore's retries).
_NO_ANSWER = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
_PLAIN_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')
_PARTS_ETAG = re.compile(r"^[0-9a-f]{32}-[0-9]+$")


def _multipart_sent(nbytes: int) -> None:
    moved(nbytes)  # the progress line, as the parts go
    crash_point("s3:mid-multipart")


def _md5_file(path: Path) -> bytes:
    with open(path, "rb", buffering=0) as f:
        return hash_fd(hashlib.md5(usedforsecurity=False), f.fileno()).digest()


class S3Archive:
    capabilities = CLOUD

    def __init__(self, settings: ArchiveSettings, *, concurrency: int = 8) -> None:
        parts = urlsplit(settings.url)
        if not parts.netloc:
            raise ConfigError(
                f"archive {settings.name!r}: {settings.url!r} names no bucket", hint="use s3://bucket/prefix"
            )
        self.name = settings.name
        self.url = settings.url.rstrip("/")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.attempts = settings.attempts
        try:
            session = boto3.session.Session(profile_name=settings.profile)
        except ProfileNotFound:
            raise ConfigError(
                f"archive {settings.name!r}: AWS profile {settings.profile!r} is not in your AWS config",
                hint=f"fix archive.{settings.name}.profile, or add the profile to ~/.aws/config",
            ) from None
        config = Config(
            retries={"total_max_attempts": settings.attempts, "mode": "standard"},
            connect_timeout=min(10, settings.timeout),
            read_timeout=settings.timeout,
            max_pool_connections=max(10, concurrency * 2),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: Any = session.client(
            "s3", endpoint_url=settings.endpoint, region_name=settings.region, config=config
        )
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART, multipart_chunksize=PART, max_concurrency=concurrency, use_threads=True
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, op: str, key: str, exc: Exception) -> ArchiveError:
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            cause = f"{err.get('Code', '?')}: {err.get('Message', '')}".strip(": ")
        elif isinstance(exc, NoCredentialsError):
            return ArchiveError(
                f"archive {self.name} ({self.url}): no AWS credentials found",
                hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or put them in .cvfs/secrets.env",
            )
        else:
            if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
                exc = exc.last_exception
            cause = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        kind = UnreachableError if isinstance(exc, _NO_ANSWER) else ArchiveError
        return kind(
            f"archive {self.name} ({self.url}) is unreachable or refused {op} of {key}: {cause}",
            hint="check the endpoint, the bucket name and your credentials (`git cvfs doctor --probe`)",
        )

    def probe(self, *, create: bool = False) -> str:
        where = self.client.meta.endpoint_url
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key("objects/"), MaxKeys=1)
            return f"bucket {self.bucket} answers at {where}"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "NoSuchBucket":
                raise self._fail("LIST", "objects/", exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self._fail("LIST", "objects/", exc) from None
        if not create:
            raise ArchiveError(
                f"archive {self.name} ({self.url}): bucket {self.bucket} does not exist at {where}",
                hint=f"check the bucket name and archive.{self.name}.endpoint, or create it "
                f"(`aws s3 mb s3://{self.bucket}`)",
            )
        try:
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                self.client.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": region})
            else:
                self.client.create_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("CREATE BUCKET", self.bucket, exc) from None
        return f"created bucket {self.bucket} at {where}"

    def _head_object(self, key: str, **extra: str) -> dict[str, Any] | None:
        """HEAD of the object (None when absent), with extra request parameters."""
        try:
            resp: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(key), **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise self._fail("HEAD", key, exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self._fail("HEAD", key, exc) from None
        return resp

    def head(self, key: str) -> ObjectInfo | None:
        resp = self._head_object(key)
        return None if resp is None else ObjectInfo(key, int(resp["ContentLength"]), resp.get("ETag", ""))

    def stored(self, key: str) -> Stored | None:
        """HEAD with the checksums S3 keeps: the SHA-256 it checked when the object was written
        (whole for a single PUT, per part for multipart), and the etag, which for a single PUT
        is the MD5 of the stored bytes and for multipart the MD5 of the parts' MD5s."""
        resp = self._head_object(key, ChecksumMode="ENABLED")
        if resp is None:
            return None
        etag = resp.get("ETag", "")
        bare = etag.strip('"')
        digests: dict[str, str] = {}
        checksum = resp.get("ChecksumSHA256")
        parts = bare.rsplit("-", 1)[1] if _PARTS_ETAG.match(bare) else None
        composite = resp.get("ChecksumType") == "COMPOSITE" or (resp.get("ChecksumType") is None and parts is not None)
        if checksum and composite:
            # S3 writes a composite as "<digest>-<parts>"; some S3-compatible stores leave the count off.
            digests["sha256-parts"] = checksum if "-" in checksum else f"{checksum}-{parts}"
        elif checksum:
            with contextlib.suppress(ValueError):
                digests["sha256"] = base64.b64decode(checksum, validate=True).hex()
        if _PLAIN_ETAG.match(etag):
            digests["md5"] = bare
        elif parts is not None:
            digests["md5-parts"] = bare
        return Stored(ObjectInfo(key, int(resp["ContentLength"]), etag), digests)

    def put_file(self, key: str, path: Path, size: int, existing: ObjectInfo | None) -> ObjectInfo:
        md5: bytes | None = None
        etag: str | None = None
        try:
            if size < MULTIPART:
                # Content-MD5 makes S3 refuse a body altered on the way (BadDigest), and the
                # etag S3 returns for a plain PUT is the MD5 of what it stored: checked below.
                md5 = _md5_file(path)
                with open(path, "rb") as body:
                    args: dict[str, Any] = {
                        "Bucket": self.bucket,
                        "Key": self._key(key),
                        "Body": body,
                        "ContentMD5": base64.b64encode(md5).decode(),
                    }
                    oid = hex_of_key(key)
                    if oid is not None:
                        # S3 checks it on arrival and keeps it: later, anyone can ask S3 whether
                        # the stored bytes are this object (HEAD, ChecksumMode=ENABLED).
                        args["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(oid)).decode()
                    if existing is None:
                        args["IfNoneMatch"] = "*"  # a racing writer's object is never replaced
                    try:
                        etag = self.client.put_object(**args).get("ETag")
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                            raise
                        raise AlreadyStored from None  # someone else's object: the caller verifies it
            else:
                # Multipart: parts in parallel, bounded memory, each part carrying its SHA-256
                # for S3 to check. Keys are content addresses, so a racing writer can only
                # write these same bytes.
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    self._key(key),
                    Config=self._transfer,
                    ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                    Callback=_multipart_sent,
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _BAD_BODY:
                raise damaged(self, key, "refused the body as damaged in transit") from None
            raise self._fail("PUT", key, exc) from None
        except (BotoCoreError, Boto3Error, OSError) as exc:
            raise self._fail("PUT", key, exc) from None
        if md5 is not None and etag:  # a single PUT: its etag is the MD5 of what S3 stored
            # A plain PUT's etag is the MD5 of what S3 stored. One that is not a plain MD5
            # (SSE-KMS) is not compared: there S3 has checked the Content-MD5 itself.
            plain = _PLAIN_ETAG.match(etag)
            if plain and plain.group(1) != md5.hex():
                self.delete(key)  # a wrong object under a content address: remove it so a retry can store the right one
                raise damaged(self, key, "stored bytes that differ from what was sent")
            return ObjectInfo(key, size, etag)
        return confirm_stored(self, key, size)  # multipart, or a racing writer's object

    def download_to(self, key: str, out: BinaryIO, size: int) -> None:
        try:
            if size < MULTIPART:
                self._get_small(key, out)
            else:
                # Ranged, parallel GETs for large objects, written at their offsets.
                self.client.download_fileobj(self.bucket, self._key(key), out, Config=self._transfer)
                out.flush()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
            raise self._fail("GET", key, exc) from None
        except (BotoCoreError, Boto3Error, OSError) as exc:
            raise self._fail("GET", key, exc) from None

    def read_range(self, key: str, fd: int, start: int, length: int) -> None:
        offset, end = start, start + length
        try:
            for attempt in range(1, self.attempts + 1):
                resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={offset}-{end - 1}")
                body = resp["Body"]
                try:
                    for chunk in body.iter_chunks(1 << 20):
                        offset = pwrite_all(fd, chunk, offset)
                    if offset == end:
                        return
                except _STREAM_ERRORS as exc:
                    if attempt == self.attempts:
                        raise self._fail("GET", key, exc) from None
                finally:
                    body.close()
            raise ArchiveError(f"archive {self.name}: {self.url}/{key} ended at byte {offset}, expected {end}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
            raise self._fail("GET", key, exc) from None
        except (BotoCoreError, Boto3Error, OSError) as exc:
            raise self._fail("GET", key, exc) from None

    def _get_small(self, key: str, out: BinaryIO) -> None:
        """One GET streamed into out (download_fileobj would HEAD first: twice the requests).
        A body cut short is read again, as s3transfer does, within the retry budget."""
        for attempt in range(1, self.attempts + 1):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            try:
                out.seek(0)
                out.truncate()
                for chunk in body.iter_chunks(1 << 20):
                    out.write(chunk)
                out.flush()
                return
            except _STREAM_ERRORS as exc:
                if attempt == self.attempts:
                    raise self._fail("GET", key, exc) from None
            finally:
                body.close()

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    yield ObjectInfo(
                        item["Key"][strip:],
                        int(item["Size"]),
                        item.get("ETag", ""),
                        modified.timestamp() if modified is not None else None,
                    )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("LIST", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("DELETE", key, exc) from None
