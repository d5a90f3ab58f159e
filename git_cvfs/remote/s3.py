"""s3:// archive on boto3: Amazon S3 or any S3-compatible store (MinIO, R2, Ceph, moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from git_cvfs.errors import ArchiveError, ConfigError, ObjectMissingError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.remote.archive import ObjectInfo, confirm_put

MULTIPART = 64 << 20
PART = 16 << 20
# Deliberate retries: standard mode backs off with jitter (about 0.1 s, 0.2 s, 0.4 s...),
# so a few transient 500/503s or resets cost well under two seconds, then we give up
# with the cause instead of hanging. Timeouts keep a dead endpoint from stalling git.
RETRY_ATTEMPTS = int(os.environ.get("GIT_CVFS_S3_MAX_ATTEMPTS", "5"))
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Archive:
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
        session = boto3.session.Session(profile_name=settings.profile) if settings.profile else boto3.session.Session()
        config = Config(
            retries={"total_max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
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
            cause = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        return ArchiveError(
            f"archive {self.name} ({self.url}) is unreachable or refused {op} of {key}: {cause}",
            hint="check the endpoint, the bucket name and your credentials (`git cvfs doctor --probe`)",
        )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return None
            raise self._fail("HEAD", key, exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self._fail("HEAD", key, exc) from None
        return ObjectInfo(key, int(resp["ContentLength"]), resp.get("ETag", ""))

    def put_file(self, key: str, path: Path, size: int) -> ObjectInfo:
        existing = self.head(key)
        if existing is not None and existing.size == size:
            return existing
        try:
            if size < MULTIPART:
                with open(path, "rb") as body:
                    args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": body}
                    if existing is None:
                        args["IfNoneMatch"] = "*"  # a racing writer's object is never replaced
                    try:
                        self.client.put_object(**args)
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                            raise
            else:
                # Multipart: parts in parallel, bounded memory. Keys are content addresses,
                # so a racing writer can only write these same bytes.
                self.client.upload_file(str(path), self.bucket, self._key(key), Config=self._transfer)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("PUT", key, exc) from None
        return confirm_put(self, key, size)

    def download_to(self, key: str, dest: Path) -> None:
        try:
            # Ranged, parallel GETs for large objects, written at their offsets.
            self.client.download_file(self.bucket, self._key(key), str(dest), Config=self._transfer)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise ObjectMissingError(f"archive {self.name}: {self.url}/{key} does not exist") from None
            raise self._fail("GET", key, exc) from None
        except (BotoCoreError, OSError) as exc:
            raise self._fail("GET", key, exc) from None

    def list(self, prefix: str = "objects/") -> Iterator[ObjectInfo]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][strip:], int(item["Size"]), item.get("ETag", ""))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("LIST", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._fail("DELETE", key, exc) from None
