"""Refresh the stat data of index entries after git-cvfs rewrote their files.

When a file is materialized out of band, its blob in the index (the ref) is
still right, but its stat data describes the ref file git wrote. Left alone,
the next `git status` would run the clean filter on it, re-hashing gigabytes.
`git update-index --refresh` would do exactly that, so instead the stat fields
of those entries are patched in place under index.lock, every other byte of
the index (extensions included) is kept, and the trailing checksum recomputed.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from stat import S_ISREG

from git_cvfs.crash import crash_point, fault_point
from git_cvfs.errors import CvfsError
from git_cvfs.local import writeback

_HEADER = struct.Struct(">4sLL")
_STAT = struct.Struct(">LLLLLLLLLL")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size
_STAT_SIZE = _STAT.size
_SHA1 = 20
_FLAG_EXTENDED = 0x4000
_NAME_MASK = 0x0FFF


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """git's offset varint (index v4 prefix compression)."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, pos


def _entries(data: bytearray, version: int, count: int) -> tuple[list[tuple[bytes, int, int]], int]:
    """(path, offset of the entry, stage) for every entry, and where the extensions begin."""
    out = []
    pos = _HEADER.size
    prev = b""
    for _ in range(count):
        start = pos
        flags = struct.unpack_from(">H", data, start + _STAT_SIZE + _SHA1)[0]
        pos = start + _STAT_SIZE + _SHA1 + 2
        if version >= 3 and flags & _FLAG_EXTENDED:
            pos += 2
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(b"\0", pos)
            name = prev[: len(prev) - strip] + bytes(data[pos:end])
            pos = end + 1
        else:
            end = data.index(b"\0", pos)
            name = bytes(data[pos:end])
            entry_len = end - start + 1
            pos = start + ((entry_len + 7) // 8) * 8
        prev = name
        out.append((name, start, (flags >> 12) & 0x3))
    return out, pos


_NS = 1_000_000_000


def _stat_fields(st: os.stat_result, mode: int) -> tuple[int, ...]:
    """The ten stat fields as git records them. Seconds come from the integer nanoseconds:
    st_mtime, a float, rounds a time in its second's last ~120 ns up to the next second."""
    m = 0xFFFFFFFF
    ctime_s, ctime_ns = divmod(st.st_ctime_ns, _NS)
    mtime_s, mtime_ns = divmod(st.st_mtime_ns, _NS)
    return (
        ctime_s & m,
        ctime_ns,
        mtime_s & m,
        mtime_ns,
        st.st_dev & m,
        st.st_ino & m,
        mode,
        st.st_uid & m,
        st.st_gid & m,
        st.st_size & m,
    )


class _DirFds:
    """lstat and utime of work-tree files by their index names (bytes), through a descriptor of
    the directory last used: entries come in path order, so files of one directory follow one
    another, and no path is joined or decoded per file (a third of the time of a settle).
    A name whose directory is gone or is no longer a directory raises FileNotFoundError."""

    def __init__(self, root: Path) -> None:
        self._root = os.fsencode(root)
        self._dir: bytes | None = None
        self._fd = -1

    def _at(self, name: bytes) -> tuple[int, bytes]:
        head, _, tail = name.rpartition(b"/")
        if head != self._dir:
            self.close()
            try:
                self._fd = os.open(self._root + b"/" + head if head else self._root, os.O_RDONLY | os.O_DIRECTORY)
            except NotADirectoryError as exc:
                raise FileNotFoundError(*exc.args) from None
            self._dir = head
        return self._fd, tail

    def lstat(self, name: bytes) -> os.stat_result:
        fd, tail = self._at(name)
        return os.lstat(tail, dir_fd=fd)

    def set_mtime(self, name: bytes, st: os.stat_result, mtime_ns: int) -> os.stat_result:
        """Set the mtime (atime kept) and return the lstat after."""
        fd, tail = self._at(name)
        os.utime(tail, ns=(st.st_atime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)
        return os.lstat(tail, dir_fd=fd)

    def close(self) -> None:
        if self._fd != -1:
            os.close(self._fd)
        self._fd = -1
        self._dir = None

    def __enter__(self) -> _DirFds:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _name(path: str) -> bytes:
    """A path as the index spells it."""
    return path.encode("utf-8", "surrogateescape")


def _names(paths: list[str]) -> set[bytes]:
    return {_name(p) for p in paths}


def _stage0_entries(data: bytearray) -> tuple[list[tuple[bytes, int]], int] | None:
    """Every stage-0 entry, as (name, entry offset), and where the extensions begin; None when
    the data is not an index this code understands."""
    if len(data) < _HEADER.size + _SHA1:
        return None
    sig, version, count = _HEADER.unpack_from(data, 0)
    if sig != b"DIRC" or version not in (2, 3, 4):
        return None
    trailer = bytes(data[-_SHA1:])
    if trailer != b"\0" * _SHA1 and hashlib.sha1(data[:-_SHA1]).digest() != trailer:
        return None

    entries, end = _entries(data, version, count)
    return [(name, offset) for name, offset, stage in entries if not stage], end


def _lstat(files: _DirFds, name: bytes) -> os.stat_result | None:
    try:
        return files.lstat(name)
    except FileNotFoundError:
        return None


def _read_index(index_path: Path) -> tuple[bytearray, int] | None:
    """The index's bytes and the second of its mtime, the one git compares entries with
    (from the integer nanoseconds, as in _stat_fields); None when there is no index."""
    try:
        with open(index_path, "rb") as f:
            return bytearray(f.read()), os.fstat(f.fileno()).st_mtime_ns // _NS
    except FileNotFoundError:
        return None


# (the work tree, the entry's name, its recorded stat fields, its blob id, index mtime in s)
# -> stat to record. It lstats the file itself, only when the entry is one to change.
EntryStat = Callable[[_DirFds, bytes, tuple[int, ...], str, int], "os.stat_result | None"]


class IndexLockedError(CvfsError):
    """git's index stayed locked (index.lock) for longer than git-cvfs waits."""


def _rewrite_entries(
    index_path: Path,
    root: Path,
    wanted: Collection[bytes],
    choose: EntryStat,
    lock_wait: float,
    *,
    busy_ok: bool,
    unseen: set[bytes] | None = None,
) -> int:
    """Under index.lock, ask `choose` about each wanted entry and write the stat it
    returns (None: leave the entry). Returns how many changed; 0 without touching anything
    when the index is in a form this code does not write. A lock held past `lock_wait`
    returns 0 when `busy_ok`, and raises IndexLockedError otherwise. `unseen` is given the
    wanted names this index file does not hold (a split index keeps most entries in its
    shared index; a form this code does not read holds none it can see)."""
    if unseen is not None:
        unseen.update(wanted)
    if not wanted:
        return 0
    lock = Path(str(index_path) + ".lock")
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                if busy_ok:
                    return 0
                raise IndexLockedError(
                    f"git's index is locked ({lock} exists): the files are written, but git's index "
                    "does not know them yet",
                    hint=f"wait for the git command that holds it; if none is running, remove {lock}; "
                    "then run `git cvfs ensure` again, which records them",
                ) from None
            time.sleep(0.02)
    try:
        read = _read_index(index_path)
        if read is None:
            return 0
        data, index_mtime = read
        parsed = _stage0_entries(data)
        if parsed is None:
            return 0
        entries, end = parsed
        others = []
        with _DirFds(root) as files:
            updated = 0
            for name, offset in entries:
                if name not in wanted:
                    others.append(offset)
                    continue
                if unseen is not None:
                    unseen.discard(name)
                recorded = _STAT.unpack_from(data, offset)
                blob = data[offset + _STAT_SIZE : offset + _STAT_SIZE + _SHA1].hex()
                new = choose(files, name, recorded, blob, index_mtime)
                if new is None:
                    others.append(offset)
                    continue
                _STAT.pack_into(data, offset, *_stat_fields(new, recorded[6]))  # the entry's mode stays git's
                updated += 1
        if not updated or not _smudge_racy(index_path, data, end, others, index_mtime):
            return 0
        if bytes(data[-_SHA1:]) != b"\0" * _SHA1:  # index.skipHash leaves a zero trailer
            data[-_SHA1:] = hashlib.sha1(data[:-_SHA1]).digest()
        fault_point("index:write")
        writeback.write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        crash_point("index:before-rename")
        os.replace(lock, index_path)
        return updated
    finally:
        if fd != -1:
            os.close(fd)
            lock.unlink(missing_ok=True)


def _racy(data: bytearray, offset: int, index_mtime: int) -> bool:
    """An entry git would not trust by its stat alone: a file (not a directory of a sparse
    index, not a submodule) written in the index's second or after, size not yet smudged."""
    recorded = _STAT.unpack_from(data, offset)
    return recorded[2] >= index_mtime and recorded[6] & 0o170000 in (0o100000, 0o120000) and recorded[9] != 0


def _smudge_racy(index_path: Path, data: bytearray, end: int, offsets: list[int], index_mtime: int) -> bool:
    """Before the index is written anew, as git does: an entry that is racily clean against the
    index as it was (file written in its second) would be trusted by its stat against the new
    index's later mtime, and a write in that second that kept the size would go unseen (and a
    checkout would overwrite it as unchanged). Its size is set to 0, which makes git look at
    the bytes again. A split index keeps most entries in its shared index, which is not
    rewritten here: if one of those is racy, False, and the index is left as it is."""
    for offset in offsets:
        if _racy(data, offset, index_mtime):
            struct.pack_into(">L", data, offset + _STAT_SIZE - 4, 0)  # the size, git's last stat field
    if _links_to(data, end) is None:
        return True
    shared = _shared_index(index_path, data, end)
    return shared is not None and not any(_racy(shared[0], offset, index_mtime) for _, offset in shared[2])


def patch_index_stat(
    index_path: Path, root: Path, written: Mapping[str, os.stat_result], *, lock_wait: float = 5.0
) -> int:
    """Record the stat data of files git-cvfs itself wrote (stage 0 entries only), each with the
    bytes its entry was made from: `written` maps each path to the stat taken when it was put in
    place. A file whose stat differs now was changed since (an edit, a checkout): its entry is
    left, and git shows it as modified. Returns how many entries were updated; raises
    IndexLockedError when the index stays locked past lock_wait."""
    wanted = {_name(p): _stat_fields(st, 0) for p, st in written.items()}

    def unchanged(
        files: _DirFds, name: bytes, _recorded: tuple[int, ...], _blob: str, _mtime: int
    ) -> os.stat_result | None:
        st = _lstat(files, name)
        return st if st is not None and _stat_fields(st, 0) == wanted[name] else None

    unseen: set[bytes] = set()
    updated = _rewrite_entries(index_path, root, wanted, unchanged, lock_wait, busy_ok=False, unseen=unseen)
    if unseen:
        updated += _refresh_through_git(index_path, root, {os.fsdecode(n): wanted[n] for n in unseen})
    return updated


def optional_locks() -> bool:
    """False when git was told to take no optional lock (`git --no-optional-locks`, or
    GIT_OPTIONAL_LOCKS=0, which editors set for the status they run in the background): then
    the index is not written for what is only a saving (status's record of files it hashed,
    settling a checkout's files), as `git status` then does not refresh it, so that the user's
    own `git commit` never finds index.lock taken."""
    return os.environ.get("GIT_OPTIONAL_LOCKS", "1").strip().lower() not in ("0", "false", "no", "off")


def record_hashed(
    index_path: Path, root: Path, hashed: Mapping[str, tuple[str, os.stat_result]], *, written_before: int
) -> int:
    """Record the stat data of files found, by hashing, to hold their index entry's bytes, as
    `git status` records what it cleaned and found unchanged, so that neither git nor the next
    `git cvfs status` hashes them again. `hashed` maps each path to (the entry's blob id, the
    file's stat before it was hashed, unchanged after). Opportunistic, as git's own refresh: an
    index another command holds is left alone. An entry is recorded only while it is still that
    blob, the file still has that stat, and the file was last written before `written_before`
    (ns; at least a clock tick before the first stat: a second write within the tick of the one
    before would keep the stat the same). Entries a split index keeps in its shared index are
    left to git, and nothing is written when optional locks are off. Returns how many entries
    were recorded."""
    if not optional_locks():
        return 0
    wanted = {
        _name(p): (blob, _stat_fields(st, 0)) for p, (blob, st) in hashed.items() if st.st_mtime_ns < written_before
    }

    def unchanged(
        files: _DirFds, name: bytes, _recorded: tuple[int, ...], blob: str, _mtime: int
    ) -> os.stat_result | None:
        want_blob, fields = wanted[name]
        if blob != want_blob:
            return None  # another entry now: what was hashed says nothing of it
        st = _lstat(files, name)
        return st if st is not None and _stat_fields(st, 0) == fields else None

    return _rewrite_entries(index_path, root, wanted, unchanged, 0, busy_ok=True)


def _refresh_through_git(index_path: Path, root: Path, expected: dict[str, tuple[int, ...]]) -> int:
    """Entries this code cannot patch in place (a split index keeps them in its shared index):
    git records them itself. `git update-index --refresh` alone refuses an entry whose size
    changed (git takes that for new content without looking, and a ref and its bytes differ
    in size), so each entry is first re-added with its blob and no stat data, which makes the
    refresh compare content (one hash of each file, through the clean filter) and then record
    the stat. Only files still exactly as written are touched."""
    import subprocess

    env = {**os.environ, "GIT_INDEX_FILE": str(index_path)}
    paths = []
    with _DirFds(root) as files:
        for path, fields in expected.items():
            st = _lstat(files, _name(path))
            if st is not None and _stat_fields(st, 0) == fields:
                paths.append(path)
    if not paths:
        return 0
    listing = subprocess.run(
        ["git", "ls-files", "-s", "-z", "--", *paths], cwd=root, env=env, capture_output=True, check=True
    ).stdout
    info = b"".join(rec + b"\0" for rec in listing.split(b"\0") if rec and rec.split(b"\t", 1)[0].endswith(b" 0"))
    if not info:
        return 0
    subprocess.run(["git", "update-index", "-z", "--index-info"], cwd=root, env=env, input=info, check=True)
    subprocess.run(["git", "update-index", "-q", "--refresh", "--", *paths], cwd=root, env=env, check=False)
    return len(paths)


def settle_racy(index_path: Path, root: Path, written: dict[str, tuple[str, int]], *, lock_wait: float = 0) -> int:
    """Take "racily clean" entries of files git just wrote out of git's re-check, without hashing.

    git trusts an entry whose stat matches the file, except when the file's mtime is
    not older than the index (same second): those it re-reads through the clean filter
    on the next `git status`, which for data files means hashing them all again.

    `written` maps each path the filter answered to (the git id of the blob it was
    asked to smudge, how many bytes it gave back). An entry is settled only when it
    is that blob, its recorded size is that many bytes, the file still has all ten
    stat fields git recorded after writing it, and it is racy. Then the file's mtime
    goes one second back and the entry records the new stat. A write after that
    gives the file a current mtime, which differs, so git notices it as it notices
    any change. Nothing is written when optional locks are off (optional_locks). Returns how
    many entries were settled.
    """

    if not optional_locks():
        return 0
    wanted = {_name(p): given for p, given in written.items()}

    def backdate(
        files: _DirFds, name: bytes, recorded: tuple[int, ...], blob: str, index_mtime: int
    ) -> os.stat_result | None:
        if (blob, recorded[9]) != wanted[name] or recorded[2] < index_mtime:
            return None  # not the bytes this filter gave, or not racy: git's own check stays
        st = _lstat(files, name)
        if st is None or not S_ISREG(st.st_mode) or recorded != _stat_fields(st, recorded[6]):
            return None  # changed since git wrote it
        target = st.st_mtime_ns - _NS
        try:
            after = files.set_mtime(name, st, target)
        except FileNotFoundError:
            return None  # removed meanwhile: git sees a deleted file, and every other entry still settles
        if after.st_mtime_ns != target or after.st_size != st.st_size or after.st_ino != st.st_ino:
            return None  # written meanwhile: its mtime is current again, and git will see that
        return after

    return _rewrite_entries(index_path, root, wanted, backdate, lock_wait, busy_ok=True)


def unchanged_since_indexed(
    index_path: Path, root: Path, paths: list[str], blob_of: Callable[[str], str] | None = None
) -> set[str]:
    """Paths whose work-tree file still has exactly the stat data git recorded for it.

    Such a file holds the bytes the index entry was made from (git's own test),
    except when the entry is "racily clean" (file mtime not before the index's),
    which is excluded here as git excludes it. A split index keeps most entries in its
    shared index: with `blob_of` (a path's blob id in the index now), a path the split
    part does not hold is looked up there, and vouched for only when the shared entry is
    that blob (the split part may have replaced it with another since) and is not racy
    against the shared index's own mtime.
    """
    if not paths:
        return set()
    read = _read_index(index_path)
    parsed = _stage0_entries(read[0]) if read is not None else None
    if read is None or parsed is None:
        return set()
    data, index_mtime = read
    unseen = _names(paths)
    out = _unchanged(data, parsed[0], index_mtime, root, unseen, None)
    if unseen and blob_of is not None and (shared := _shared_index(index_path, data, parsed[1])) is not None:
        wanted = {name: blob_of(os.fsdecode(name)) for name in unseen}
        out |= _unchanged(shared[0], shared[2], shared[1], root, set(wanted), wanted)
    return out


def _unchanged(
    data: bytearray,
    entries: list[tuple[bytes, int]],
    index_mtime: int,
    root: Path,
    wanted: set[bytes],
    blobs: Mapping[bytes, str] | None,
) -> set[str]:
    """unchanged_since_indexed over one index file's entries; the names it finds are taken out
    of `wanted`; with `blobs`, an entry counts only when it is that blob."""
    out = set()
    with _DirFds(root) as files:
        for name, offset in entries:
            if name not in wanted:
                continue
            wanted.discard(name)
            recorded = _STAT.unpack_from(data, offset)
            if recorded[2] >= index_mtime:
                continue  # racily clean: git would look at the bytes again
            if blobs is not None and data[offset + _STAT_SIZE : offset + _STAT_SIZE + _SHA1].hex() != blobs[name]:
                continue
            st = _lstat(files, name)
            if st is not None and recorded == _stat_fields(st, recorded[6]):
                out.add(os.fsdecode(name))
    return out


def _links_to(data: bytearray, end: int) -> str | None:
    """The file name of the shared index a split index links to (its "link" extension, among
    the extensions from `end`), or None."""
    pos = end
    try:
        while pos + 8 <= len(data) - _SHA1:
            sig, size = struct.unpack_from(">4sL", data, pos)
            if sig == b"link":
                return "sharedindex." + data[pos + 8 : pos + 8 + _SHA1].hex()
            pos += 8 + size
    except struct.error:
        return None
    return None


def _shared_index(index_path: Path, data: bytearray, end: int) -> tuple[bytearray, int, list[tuple[bytes, int]]] | None:
    """The shared index a split index links to, read from where git keeps it (beside the index
    file): its bytes, its mtime's second and its stage-0 entries. None when the index is not
    split, or the shared one is missing or not an index this code reads."""
    name = _links_to(data, end)
    shared = _read_index(index_path.parent / name) if name is not None else None
    parsed = _stage0_entries(shared[0]) if shared is not None else None
    if shared is None or parsed is None:
        return None
    return shared[0], shared[1], parsed[0]


def staged_blobs(index_path: Path, at_least: int) -> dict[bytes, tuple[str, int]] | None:
    """Each stage-0 entry whose file git last saw at `at_least` bytes or more, by its index
    name: (its blob id, that size, the low 32 bits git keeps). None when there is no index or it
    is in a form this code does not read (then nothing is known). A split index keeps most
    entries in its shared index: a name the split part does not hold is taken from there. The
    split part may have replaced such an entry since, so an answer is a candidate to compare the
    file with (the filter's use), never a statement of what is staged."""
    read = _read_index(index_path)
    if read is None:
        return None
    found: dict[bytes, tuple[str, int]] = {}
    try:
        parsed = _stage0_entries(read[0])
        if parsed is None:
            return None
        _sized_entries(read[0], parsed[0], at_least, found)
        if (shared := _shared_index(index_path, read[0], parsed[1])) is not None:
            _sized_entries(shared[0], shared[2], at_least, found)
    except (ValueError, IndexError, struct.error):  # not the layout it claims (a SHA-256 repository's)
        return None
    found.pop(b"", None)  # a split part's replacing entries may go without their names
    return found


def _sized_entries(
    data: bytearray, entries: list[tuple[bytes, int]], at_least: int, found: dict[bytes, tuple[str, int]]
) -> None:
    """Add the entries of at least that size to `found`, where it does not have their name yet."""
    for name, offset in entries:
        size = _STAT.unpack_from(data, offset)[9]
        if size >= at_least and name not in found:
            found[name] = (data[offset + _STAT_SIZE : offset + _STAT_SIZE + _SHA1].hex(), size)
