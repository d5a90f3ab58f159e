"""Clean and smudge decisions, shared by the filter process and the single-file fallbacks."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import Enum
from itertools import chain
from stat import S_ISREG
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from git_cvfs import output
from git_cvfs.core.model.buffer import MEMORY_LIMIT
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import crash_point
from git_cvfs.errors import CvfsError, IntegrityError, RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.cache import CHUNK, BackgroundStore, Spool
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.journal import PathJournal

if TYPE_CHECKING:
    from git_cvfs.remote.archive import LocalArchive


class Staged(NamedTuple):
    """What git's index holds for a path: the blob's id, and the size of the file when git last
    looked at it (the low 32 bits, as the index keeps it)."""

    blob: str
    size: int


SAMPLE = 4096


def sampled_apart(ws: Workspace, path: str, ref: Ref, archives: Sequence[LocalArchive]) -> bool:
    """Whether the work-tree file at `path` surely holds other bytes than `ref`: it is another
    size, or a few pages of it (the first, a third and two thirds in, and the last: a format's
    header or footer changes with its data) differ from a copy of the object on this machine
    (the cache's, or a directory archive's). A file rewritten with new bytes of the same size
    (a model's next checkpoint) then goes straight to the cache, instead of being compared,
    found new, and read a second time (_clean_again). False when there is no copy to look at,
    or the pages match."""
    from git_cvfs.remote.archive import object_key

    try:
        fd = os.open(ws.repo.root / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size != ref.size:
            return True
        if ref.size < SAMPLE:
            return False
        stored: BinaryIO | None = None
        with contextlib.suppress(OSError):
            stored = open(ws.cache.object_path(ref.hex), "rb")
        for archive in archives:
            if stored is not None:
                break
            with contextlib.suppress(CvfsError, OSError):
                stored = archive.open_object(object_key(ref.hex))
        if stored is None:
            return False
        with stored:
            for offset in sorted({0, ref.size // 3, 2 * ref.size // 3, ref.size - SAMPLE}):
                stored.seek(offset)
                if stored.read(SAMPLE) != os.pread(fd, SAMPLE, offset):
                    return True
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


class _Job(NamedTuple):
    """One file being cleaned, and where its answer goes."""

    ws: Workspace
    path: str
    min_size: int
    on_ref: Callable[[Ref], object] | None
    filer: BackgroundStore | None


def _answered(ref: Ref, on_ref: Callable[[Ref], object] | None) -> bytes:
    if on_ref is not None:
        on_ref(ref)
    return ref.encode()


def clean(
    ws: Workspace,
    path: str,
    chunks: Iterable[bytes],
    *,
    on_ref: Callable[[Ref], object] | None = None,
    filer: BackgroundStore | None = None,
    staged: Callable[[str], Staged | None] | None = None,
) -> Iterator[bytes]:
    """The blob git should store for `path`: the content itself below minSize, else its ref.

    All input is consumed before this returns. Memory stays bounded: content is
    held only while it may still be a small file; past that it is hashed while
    spooled to the cache's tmp dir, then filed under its oid: here, or, given a filer (the
    filter process's), in the background while git sends the next file.

    Given `staged` (the index's entry for a path), a file git cleans again whose index entry
    may be these very bytes (a touched file, `git add -A` after a rewrite with the same bytes)
    is first hashed without being written anywhere: see _clean_again.
    """
    min_size = ws.settings.min_size_for(path)
    keep_limit = max(MAX_REF_BYTES, min(min_size, MEMORY_LIMIT))
    rest = iter(chunks)
    held: list[bytes] = []
    held_size = 0
    for chunk in rest:
        held.append(chunk)
        held_size += len(chunk)
        if held_size > keep_limit:
            break
    else:
        return iter([_clean_small(ws, b"".join(held), min_size, on_ref)])
    job = _Job(ws, path, min_size, on_ref, filer)
    entry = staged(path) if staged is not None else None
    if entry is not None:
        again = _clean_again(job, entry, held, rest)
        if again is not None:
            return again
    return _spooled(job, ws.cache.spool(hash_past_errors=True), chain(held, rest))


def _spooled(job: _Job, spool: Spool, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Spool the rest of the content, then file it."""
    try:
        for chunk in chunks:
            spool.write(chunk)
        spool.written()  # a write error fails this file now, before git is given its ref
    except BaseException:
        spool.discard()
        raise
    return _filed(job, spool)


def _filed(job: _Job, spool: Spool) -> Iterator[bytes]:
    """The answer for spooled content: its ref, once it is in the cache (or being filed)."""
    if spool.write_error is not None:
        return iter([_clean_unwritten(job.ws, spool, spool.write_error, job.min_size, job.on_ref)])
    if spool.size < job.min_size:
        # Too big to hold in memory, yet below minSize: hand the spooled bytes back.
        spool.finish(sync=False)
        return _read_back(spool)
    hex_digest = spool.hexdigest()
    try:
        exists = job.ws.cache.has(hex_digest, spool.size)
        # git re-cleans the same content often; an object already stored costs no fsync.
        if job.filer is not None:
            job.filer.submit(spool, hex_digest, sync=not exists, label=job.path)  # the filer owns it now
        else:
            spool.finish(sync=not exists)
            job.ws.cache.store_spool(spool, hex_digest)
    except BaseException:
        spool.discard()
        raise
    return iter([_answered(Ref(hex_digest, spool.size), job.on_ref)])


def _clean_again(job: _Job, entry: Staged, held: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes] | None:
    """A file git cleans again, whose work-tree file is still the size the index recorded:
    hashed before anything is written. When its bytes turn out to be the ref the index already
    stages for this path, the answer is that ref and nothing is written: with the lean cache
    (the default) the cache holds no copy of what the work tree holds, and copying a touched
    gigabyte into it at every `git status` would double the disk the data takes, and write it.

    Otherwise the bytes are spooled and filed as any others; git's stream cannot be read
    twice, so they come from where they are still to be had. Up to MEMORY_LIMIT the whole
    content is held in memory meanwhile. A larger file is compared, packet by packet, with
    the work-tree file git is reading (the same bytes, just read, from the page cache): at
    the first difference (content git took from elsewhere, `git hash-object --stdin --path`,
    a merge's renormalizing) the part before it is copied from the file, checked against
    the hash of what git sent, and the rest spooled as it comes; bytes that are the file's
    throughout, yet another ref (a rewrite of the same size), are copied from it, checked
    the same way. The file changing meanwhile fails the clean (git stages nothing).
    None: not such a file (the caller spools as usual, having been given nothing more).
    """
    if entry.size < job.min_size:
        return None
    try:
        fd = os.open(job.ws.repo.root / job.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not S_ISREG(st.st_mode) or st.st_size & 0xFFFFFFFF != entry.size or st.st_size < job.min_size:
            return None
        if st.st_size <= MEMORY_LIMIT:
            return _again_in_memory(job, entry, chain(held, rest), st.st_size)
        return _again_compared(job, entry, fd, chain(held, rest))
    finally:
        os.close(fd)


def _again_in_memory(job: _Job, entry: Staged, stream: Iterator[bytes], limit: int) -> Iterator[bytes]:
    kept: list[bytes] = []
    h = hashlib.sha256()
    size = 0
    for chunk in stream:
        kept.append(chunk)
        h.update(chunk)
        size += len(chunk)
        if size > limit:  # longer than the file was: not the staged ref
            break
    else:
        ref = Ref(h.hexdigest(), size)
        if _needs_no_copy(job.ws, ref, entry):
            return iter([_answered(ref, job.on_ref)])
    spool = job.ws.cache.spool(hash_past_errors=True)
    try:
        spool.write_hashed(kept, h)
    except BaseException:
        spool.discard()
        raise
    return _spooled(job, spool, stream)


def _again_compared(job: _Job, entry: Staged, fd: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    h = hashlib.sha256()
    offset = 0
    for chunk in chunks:
        if os.pread(fd, len(chunk), offset) != chunk:
            return _spooled(job, _copied_from(job, fd, offset, h), chain([chunk], chunks))
        h.update(chunk)
        offset += len(chunk)
    ref = Ref(h.hexdigest(), offset)
    if _needs_no_copy(job.ws, ref, entry):
        return iter([_answered(ref, job.on_ref)])
    spool = _copied_from(job, fd, offset, h)
    try:
        spool.written()
    except BaseException:
        spool.discard()
        raise
    return _filed(job, spool)


def _copied_from(job: _Job, fd: int, size: int, sent: hashlib._Hash) -> Spool:
    """A spool holding the file's first `size` bytes, which must be what git sent (hashed in
    `sent`): compared as they came, and hashed again here."""
    spool = job.ws.cache.spool(hash_past_errors=True)
    try:
        offset = 0
        while offset < size:
            chunk = os.pread(fd, min(CHUNK, size - offset), offset)
            if not chunk:
                break
            spool.write(chunk)
            offset += len(chunk)
        if offset != size or spool.hexdigest() != sent.hexdigest():
            raise CvfsError(
                f"{job.path} changed while git-cvfs was reading it", hint="run the git command again once it is written"
            )
    except BaseException:
        spool.discard()
        raise
    return spool


def _needs_no_copy(ws: Workspace, ref: Ref, entry: Staged) -> bool:
    """These bytes are the ref the index stages for the path, and the cache need not hold them:
    it does already, or it is lean (a copy of what the work tree holds is not kept)."""
    if git_blob_id(ref.encode()) != entry.blob:
        return False
    return not ws.settings.cache_keep or ws.cache.has(ref.hex, ref.size)


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
    return _answered(Ref(hex_digest, len(data)), on_ref)


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
    return _answered(Ref(hex_digest, size), on_ref)


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
