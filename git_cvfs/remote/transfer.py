"""Parallel uploads and verified downloads between the cache and the archives."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Generic, TypeVar

from git_cvfs.errors import ENVIRONMENT_HINTS, ArchiveError, CvfsError, IntegrityError, ObjectMissingError
from git_cvfs.format.ref import Ref
from git_cvfs.local.cache import Cache
from git_cvfs.output import Progress
from git_cvfs.remote.archive import AlreadyStored, Archive, LocalArchive, ObjectInfo, PutItem, as_local, object_key
from git_cvfs.remote.resumable import RESUMABLE_FROM, fetch_resumable, partial_path
from git_cvfs.remote.verify import Verdict, Verification, verify_copy

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Outcome(Generic[T]):
    """Per-object results of a batch, by oid: what each success returned, and why each failure failed."""

    done: dict[str, T] = field(default_factory=dict)
    failed: dict[str, CvfsError] = field(default_factory=dict)


def _run_parallel(items: Sequence[Ref], work: Callable[[Ref], T], concurrency: int, progress: Progress) -> Outcome[T]:
    outcome: Outcome[T] = Outcome()

    def one(ref: Ref) -> None:
        try:
            outcome.done[ref.hex] = work(ref)
        except (CvfsError, OSError) as exc:
            outcome.failed[ref.hex] = _failure(ref, exc)
        progress.advance(1, ref.size)

    if len(items) <= 1 or concurrency <= 1:
        for ref in items:
            one(ref)
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
            list(pool.map(one, items))
    return outcome


def _failure(ref: Ref, exc: CvfsError | OSError) -> CvfsError:
    """How one object's failure is reported in an Outcome."""
    if isinstance(exc, CvfsError):
        return exc
    return CvfsError(f"{ref.oid}: {exc.strerror or exc}", hint=ENVIRONMENT_HINTS.get(exc.errno or 0))


def unique(refs: Iterable[Ref]) -> list[Ref]:
    return list({r.hex: r for r in refs}.values())


# Bytes that fail their hash may have been damaged in transit (a proxy, a bad NIC, a
# truncated body the SDK did not notice): each archive gets this many tries before the
# next archive is asked, and damaged uploads are sent this many times before giving up.
INTEGRITY_ATTEMPTS = 3


def fetch_verified(archives: Sequence[Archive], ref: Ref, attempt: Callable[[Archive, str], R | None]) -> R:
    """Ask each archive in order for the object until `attempt(archive, key)` has verified bytes
    in place and returns what it made of them. It returns None when the bytes it got do not
    match the ref (then it is asked again: INTEGRITY_ATTEMPTS times for a cloud archive) and
    raises ArchiveError when the archive lacks the object or cannot be reached (then the next
    archive is asked). Raises what every archive said, combined, when none had good bytes."""
    errors: list[ArchiveError | IntegrityError] = []
    key = object_key(ref.hex)
    for archive in archives:
        tries = 1 if archive.capabilities.local else INTEGRITY_ATTEMPTS
        for _ in range(tries):
            try:
                result = attempt(archive, key)
            except ArchiveError as exc:
                errors.append(exc)
                break
            if result is not None:
                return result
        else:
            errors.append(
                IntegrityError(
                    f"archive {archive.name}: {archive.url}/{key} gave bytes that do not match {ref.oid}"
                    + (f" ({tries} tries)" if tries > 1 else ""),
                    hint="the archived object is damaged, or something between here and the archive alters it; "
                    "restore it from another archive or a machine that has it",
                )
            )
    if len(errors) == 1:
        raise errors[0]
    if all(isinstance(e, ObjectMissingError) for e in errors):
        raise ObjectMissingError(f"{ref.oid} is in none of the archives: " + "; ".join(e.message for e in errors))
    integrity = [e for e in errors if isinstance(e, IntegrityError)]
    if integrity:
        raise IntegrityError("; ".join(e.message for e in errors), hint=integrity[0].hint)
    raise ArchiveError("; ".join(e.message for e in errors), hint=errors[-1].hint)


def download_to_cache(
    archives: Sequence[Archive], cache: Cache, ref: Ref, *, concurrency: int = 8, source: dict[str, str] | None = None
) -> Path:
    """Fetch one object, trying each archive in order; bytes reach the cache only once verified.
    Large objects are fetched resumably (remote/resumable.py): a killed run's ranges are kept.
    source, when given, is told which archive the verified bytes came from (oid hex -> name)."""
    if cache.has(ref.hex, ref.size):
        return cache.object_path(ref.hex)

    def into_cache(archive: Archive, key: str) -> Path | None:
        if ref.size >= RESUMABLE_FROM:
            partial = partial_path(cache.tmp, ref)
            got = (
                cache.store_file(partial, ref.hex)
                if fetch_resumable(archive, ref, partial, concurrency=concurrency)
                else None
            )
        else:
            tmp = cache.tmp_path()
            try:
                with open(tmp, "wb") as out:
                    archive.download_to(key, out, ref.size)
                got = cache.store_verified(tmp, ref.hex, ref.size)
            finally:
                tmp.unlink(missing_ok=True)
        if got is not None and source is not None:
            source[ref.hex] = archive.name
        return got

    return fetch_verified(archives, ref, into_cache)


def download_many(archives: Sequence[Archive], cache: Cache, refs: Iterable[Ref], *, concurrency: int) -> Outcome[Path]:
    todo = [r for r in unique(refs) if not cache.has(r.hex, r.size)]
    progress = Progress("Downloading objects", len(todo), sum(r.size for r in todo))
    fetch = partial(download_to_cache, archives, cache, concurrency=concurrency)
    outcome = _run_parallel(todo, fetch, concurrency, progress)
    progress.finish()
    return outcome


# Objects this small go straight to a create-if-absent PUT: when the archive has them
# already, it refuses the write and nothing is lost but the small body. Larger ones are
# asked about first, so a big body is never sent for nothing.
HEAD_FIRST = 1 << 20


@dataclass(frozen=True)
class Upload:
    info: ObjectInfo
    sent: bool  # False: the archive had it already


class UnverifiedCopyError(ObjectMissingError):
    """The archive holds something under the object's key, but nothing at hand shows it is the
    object, and this machine has no copy to compare with or send again."""


def upload_one(archive: Archive, cache: Cache, ref: Ref, verified_etag: str | None = None) -> Upload:
    """Make sure `archive` holds `ref`'s bytes, shown to be so: an object already there is
    verified (remote/verify.py) and kept, or replaced when it is not the object."""
    done, path, existing = _before_upload(archive, cache, ref, verified_etag)
    if done is not None:
        return done
    key = object_key(ref.hex)
    for attempt in range(1, INTEGRITY_ATTEMPTS + 1):
        try:
            return Upload(archive.put_file(key, path, ref.size, existing), sent=True)
        except AlreadyStored:
            found = verify_copy(archive, ref, local=path, verified_etag=verified_etag)
            if found.ok:
                return _kept(found)
            existing = found.info  # not shown to be the object: replace it (None: gone meanwhile)
        except IntegrityError:
            # The archive refused the body, or held or stored something else: the backend
            # has removed what was there, so sending it again is safe.
            if attempt == INTEGRITY_ATTEMPTS:
                raise
            existing = None
    raise IntegrityError(
        f"archive {archive.name}: {archive.url}/{key} still holds other bytes than {ref.oid} after "
        f"{INTEGRITY_ATTEMPTS} uploads",
        hint="something keeps writing that key, or the archive alters what it stores; check it",
    )


def _kept(found: Verification) -> Upload:
    assert found.info is not None  # verified: the archive described the object
    return Upload(found.info, sent=False)


def _before_upload(
    archive: Archive, cache: Cache, ref: Ref, verified_etag: str | None
) -> tuple[Upload | None, Path, ObjectInfo | None]:
    """(the Upload, when the archive is shown to hold the object already; the cache file to
    send; what the archive holds under the key, to be replaced)."""
    key = object_key(ref.hex)
    path = cache.object_path(ref.hex)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        found = verify_copy(archive, ref, verified_etag=verified_etag)
        if found.ok:
            return _kept(found), path, found.info
        if found.verdict is Verdict.MISSING:
            raise ObjectMissingError(
                f"{ref.oid} is not in the local cache and not in archive {archive.name} ({archive.url})",
                hint="run the command on a machine that has the file, or restore it with `git cvfs ingest`",
            ) from None
        raise UnverifiedCopyError(
            f"archive {archive.name}: {archive.url}/{key} cannot be shown to be {ref.oid} ({found.how}), "
            "and this machine has no copy to compare or send",
            hint="run the command on a machine that has the file",
        ) from None
    if st.st_size != ref.size:
        raise IntegrityError(f"cache object {ref.oid} has {st.st_size} bytes, expected {ref.size}")
    existing = None
    if ref.size >= HEAD_FIRST or archive.capabilities.local:
        found = verify_copy(archive, ref, local=path, verified_etag=verified_etag)
        if found.ok:
            return _kept(found), path, found.info
        existing = found.info  # None: absent; otherwise not shown to be the object, so replaced
    return None, path, existing


# Objects below this go to a directory archive in batches of up to BATCH_COUNT, with one
# flush of the disk per batch (LocalArchive.put_files); larger ones are flushed one by one,
# where the bytes, not the journal commit, are the cost.
BATCH_BELOW = 1 << 20
BATCH_COUNT = 1000


def upload_many(
    archive: Archive,
    cache: Cache,
    refs: Iterable[Ref],
    *,
    concurrency: int,
    verified_etags: Mapping[str, str] | None = None,
) -> Outcome[Upload]:
    """Upload what the archive does not hold; verified_etags: etags this machine recorded after
    verified uploads to this archive (an unchanged one vouches for the bytes where the archive
    assigns etags)."""
    todo = unique(refs)
    known = verified_etags or {}
    progress = Progress(f"Uploading objects to {archive.name}", len(todo), sum(r.size for r in todo))
    local = as_local(archive)
    batched = [r for r in todo if r.size < BATCH_BELOW] if local is not None else []
    one_by_one = todo if not batched else [r for r in todo if r.size >= BATCH_BELOW]
    outcome = _run_parallel(
        one_by_one, lambda r: upload_one(archive, cache, r, known.get(r.hex)), concurrency, progress
    )
    for start in range(0, len(batched), BATCH_COUNT):
        assert local is not None
        _upload_batch(local, cache, batched[start : start + BATCH_COUNT], outcome, progress)
    progress.finish()
    return outcome


def _upload_batch(
    archive: LocalArchive, cache: Cache, refs: Sequence[Ref], outcome: Outcome[Upload], progress: Progress
) -> None:
    items: list[PutItem] = []
    sending: list[Ref] = []
    for ref in refs:
        try:
            done, path, existing = _before_upload(archive, cache, ref, None)
        except (CvfsError, OSError) as exc:
            outcome.failed[ref.hex] = _failure(ref, exc)
            progress.advance(1, ref.size)
            continue
        if done is not None:
            outcome.done[ref.hex] = done
            progress.advance(1, ref.size)
        else:
            items.append((object_key(ref.hex), path, ref.size, existing))
            sending.append(ref)
    for ref, result in zip(sending, archive.put_files(items), strict=True):
        if isinstance(result, AlreadyStored):  # a racing writer's copy: verified, kept or replaced
            try:
                outcome.done[ref.hex] = upload_one(archive, cache, ref)
            except (CvfsError, OSError) as exc:
                outcome.failed[ref.hex] = _failure(ref, exc)
        elif isinstance(result, CvfsError):
            outcome.failed[ref.hex] = result
        else:
            outcome.done[ref.hex] = Upload(result, sent=True)
        progress.advance(1, ref.size)
