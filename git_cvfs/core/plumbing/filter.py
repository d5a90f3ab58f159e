"""Clean and smudge decisions, shared by the filter process and the single-file fallbacks."""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from git_cvfs import output
from git_cvfs.core.model.buffer import MEMORY_LIMIT
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import crash_point
from git_cvfs.errors import CvfsError, IntegrityError, RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.cache import CHUNK, BackgroundStore, Spool
from git_cvfs.local.journal import PathJournal

if TYPE_CHECKING:
    from git_cvfs.remote.archive import LocalArchive


def clean(
    ws: Workspace,
    path: str,
    chunks: Iterable[bytes],
    *,
    on_ref: Callable[[Ref], object] | None = None,
    filer: BackgroundStore | None = None,
) -> Iterator[bytes]:
    """The blob git should store for `path`: the content itself below minSize, else its ref.

    All input is consumed before this returns. Memory stays bounded: content is
    held only while it may still be a small file; past that it is hashed while
    spooled to the cache's tmp dir, then filed under its oid: here, or, given a filer (the
    filter process's), in the background while git sends the next file.
    """
    min_size = ws.settings.min_size_for(path)
    keep_limit = max(MAX_REF_BYTES, min(min_size, MEMORY_LIMIT))
    held: list[bytes] = []
    held_size = 0
    spool: Spool | None = None
    try:
        for chunk in chunks:
            if spool is None and held_size + len(chunk) <= keep_limit:
                held.append(chunk)
                held_size += len(chunk)
                continue
            if spool is None:
                spool = ws.cache.spool(hash_past_errors=True)
                for part in held:
                    spool.write(part)
                held = []
            spool.write(chunk)
        if spool is not None:
            spool.written()  # a write error fails this file now, before git is given its ref
    except BaseException:
        if spool is not None:
            spool.discard()
        raise
    if spool is None:
        return iter([_clean_small(ws, b"".join(held), min_size, on_ref)])
    if spool.write_error is not None:
        return iter([_clean_unwritten(ws, spool, spool.write_error, min_size, on_ref)])
    if spool.size < min_size:
        # Too big to hold in memory, yet below minSize: hand the spooled bytes back.
        spool.finish(sync=False)
        return _read_back(spool)
    hex_digest = spool.hexdigest()
    try:
        exists = ws.cache.has(hex_digest, spool.size)
        # git re-cleans the same content often; an object already stored costs no fsync.
        if filer is not None:
            filer.submit(spool, hex_digest, sync=not exists, label=path)  # the filer owns it now
        else:
            spool.finish(sync=not exists)
            ws.cache.store_spool(spool, hex_digest)
    except BaseException:
        spool.discard()
        raise
    ref = Ref(hex_digest, spool.size)
    if on_ref is not None:
        on_ref(ref)
    return iter([ref.encode()])


def _clean_small(ws: Workspace, data: bytes, min_size: int, on_ref: Callable[[Ref], object] | None) -> bytes:
    if len(data) <= MAX_REF_BYTES:
        with contextlib.suppress(RefError):  # looks like a ref but is not one: ordinary content
            ref = parse_ref(data)
            if ref is not None:
                return ref.encode()
    if len(data) < min_size:
        return data
    hex_digest = hashlib.sha256(data).hexdigest()
    if not ws.cache.has(hex_digest, len(data)):
        ws.cache.put_stream([data], expect_hex=hex_digest)
    ref = Ref(hex_digest, len(data))
    if on_ref is not None:
        on_ref(ref)
    return ref.encode()


def _clean_unwritten(
    ws: Workspace, spool: Spool, error: OSError, min_size: int, on_ref: Callable[[Ref], object] | None
) -> bytes:
    """The ref of content the disk would not take (full, read-only): given only if its bytes
    are stored already, in the cache or in an archive this machine verified them in. git
    cleans unchanged files again (a racily clean entry, `git add -A` after a touch): on a
    full disk `git status` and `git commit` would otherwise fail for bytes kept safe long ago.
    Anything else raises the disk's error: no ref without its bytes (invariant 3)."""
    spool.discard()
    hex_digest, size = spool.hexdigest(), spool.size
    if size < min_size or not (ws.cache.has(hex_digest, size) or _verified_in_an_archive(ws, hex_digest)):
        raise error
    ref = Ref(hex_digest, size)
    if on_ref is not None:
        on_ref(ref)
    return ref.encode()


def _verified_in_an_archive(ws: Workspace, hex_digest: str) -> bool:
    """This machine's log of verified uploads names it (the lean cache drops archived objects)."""
    from git_cvfs.local.archived_log import ArchivedLog

    try:
        archives = [ws.settings.archives[name] for name in ws.archive_names]
    except CvfsError:  # settings it cannot use: no archive vouches
        return False
    try:
        return any(hex_digest in ArchivedLog(ws.repo.cvfs_dir, settings).known() for settings in archives)
    except OSError:  # a log it cannot read vouches for nothing
        return False


def _read_back(spool: Spool) -> Iterator[bytes]:
    f = open(spool.path, "rb")  # opened now: the spool can go at once, the open file keeps the bytes
    spool.discard()
    return _chunks_of(f)


# Objects up to this size read from a directory archive are held in memory while verified;
# larger ones are hashed in one pass and streamed (and hashed again) in a second.
LOCAL_IN_MEMORY = 8 << 20


def local_archives(ws: Workspace) -> list[LocalArchive]:
    """The directory archives this machine may read, in the order reads try them."""
    from git_cvfs.remote.archive import as_local, capabilities_of

    out = []
    for name in ws.readable_names:  # an archive not approved on this machine is never read
        if not capabilities_of(ws.settings.archives[name].url).local:
            continue  # not opened at all: its SDK would cost more than this whole smudge
        try:
            archive = as_local(ws.archive(name))
        except CvfsError:
            continue  # a bad URL: the download path reports it, as for any archive
        if archive is not None:
            out.append(archive)
    return out


def local_archive_bytes(archives: Sequence[LocalArchive], ref: Ref) -> bytes | None:
    """A small object's bytes (up to LOCAL_IN_MEMORY) from the first of these archives whose
    copy hashes to it, held in memory while verified; None when none has a good copy."""
    from git_cvfs.remote.archive import object_key

    assert ref.size <= LOCAL_IN_MEMORY
    for archive in archives:
        f = archive.open_object(object_key(ref.hex))
        if f is None:
            continue
        with f:
            data = f.read(ref.size)
            longer = f.read(1)  # asking for size + 1 at once would cost a copy of the whole
        if len(data) == ref.size and not longer and hashlib.sha256(data).hexdigest() == ref.hex:
            return data
    return None


def local_archive_chunks(archives: Sequence[LocalArchive], ref: Ref) -> Iterator[bytes] | None:
    """The object's bytes straight from one of these directory archives (local_archives),
    verified before the first byte goes out: no copy into the cache, no fsync, no second read
    of a cache file. None when none has a good copy (the caller downloads as usual, and reports)."""
    from git_cvfs.remote.archive import object_key

    if ref.size <= LOCAL_IN_MEMORY:
        data = local_archive_bytes(archives, ref)
        return None if data is None else iter([data])
    for archive in archives:
        f = archive.open_object(object_key(ref.hex))
        if f is None:
            continue
        h = hashlib.sha256()
        size = 0
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
        if (h.hexdigest(), size) != (ref.hex, ref.size):
            f.close()
            continue
        f.seek(0)
        return _rehashed(f, ref)
    return None


def _rehashed(f: BinaryIO, ref: Ref) -> Iterator[bytes]:
    """Stream again, hashing again: bytes changed between the passes fail the reply, and git
    writes nothing (a failed status after the content discards it)."""
    h = hashlib.sha256()
    for chunk in _chunks_of(f):
        h.update(chunk)
        yield chunk
    if h.hexdigest() != ref.hex:
        raise IntegrityError(f"{ref.oid} changed in the archive while it was being read")


class Action(Enum):
    PASS = "pass"  # not a ref: give git the content unchanged
    LEAVE = "leave"  # keep the ref in the work tree (policy, skip-smudge)
    CACHE = "cache"  # stream the object from the cache
    DOWNLOAD = "download"  # fetch it first, then stream it
    DEFER = "defer"  # too large for git's buffer: write it out of band


class SmudgePlan(NamedTuple):
    action: Action
    ref: Ref | None = None
    problem: str | None = None


def plan_smudge(ws: Workspace, path: str, blob_head: bytes, blob_size: int) -> SmudgePlan:
    if blob_size > MAX_REF_BYTES:
        return SmudgePlan(Action.PASS)
    try:
        ref = parse_ref(blob_head)
    except RefError as exc:
        return SmudgePlan(Action.PASS, problem=f"not a valid ref ({exc.message}); left as it is in git")
    if ref is None:
        return SmudgePlan(Action.PASS)
    if not ws.settings.wants_fetch(path):
        return SmudgePlan(Action.LEAVE, ref)
    if ref.size > ws.settings.stream_max:
        return SmudgePlan(Action.DEFER, ref)
    if ws.cache.has(ref.hex, ref.size):
        return SmudgePlan(Action.CACHE, ref)
    return SmudgePlan(Action.DOWNLOAD, ref)


def cache_chunks(ws: Workspace, ref: Ref) -> Iterator[bytes]:
    """The object's bytes. The file is opened now, so a missing object fails before any reply."""
    return _chunks_of(open(ws.cache.object_path(ref.hex), "rb"))


def _chunks_of(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk
            crash_point("filter:mid-content")


class SmudgeReport:
    """What a checkout left as refs, and why; printed once when the filter ends."""

    ENSURE_HINT = "run `git cvfs ensure` to materialize them when you need them"

    def __init__(self) -> None:
        self.left: dict[str, list[str]] = defaultdict(list)
        self.hints: dict[str, str] = {}
        self.deferred: list[str] = []
        self._pending: PathJournal | None = None

    def leave(self, path: str, reason: str, hint: str | None = None) -> None:
        self.left[reason].append(path)
        if hint is not None:
            self.hints[reason] = hint

    def defer(self, ws: Workspace, path: str) -> None:
        """Record a large file for out-of-band writing, at once (see local/journal.py)."""
        self.deferred.append(path)
        if self._pending is None:
            self._pending = PathJournal(ws.pending_dir)
        self._pending.append(path)

    def print_notice(self, *, hook_will_run: bool) -> None:
        for reason, paths in sorted(self.left.items()):
            noun = "file" if len(paths) == 1 else "files"
            output.info(f"git-cvfs: {len(paths)} {noun} left as refs ({reason}): {_sample(paths)}")
            output.info(f"hint: {self.hints.get(reason, self.ENSURE_HINT)}")
        if self.deferred and not hook_will_run:
            n = len(self.deferred)
            noun = "file" if n == 1 else "files"
            output.info(f"git-cvfs: {n} large {noun} left as refs for now: {_sample(self.deferred)}")
            output.info("hint: run `git cvfs ensure` to write them (this git command runs no git-cvfs hook)")


def _sample(paths: list[str], limit: int = 3) -> str:
    """The first paths in path order: delayed downloads finish in any order, a notice does not."""
    paths = sorted(paths)
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
