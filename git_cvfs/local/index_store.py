"""Read, lock and write inventory shards (.cvfs/index/*.jsonl) in the work tree.

Shards are committed, so anyone may write one: they are read a line at a time (each
line capped at MAX_ROW_BYTES), and rewritten by walking the old rows and the sorted
changes together. Memory holds the changes and one row, whatever a shard holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

from git_cvfs.crash import crash_point
from git_cvfs.errors import CvfsError, GitError
from git_cvfs.format.inventory import (
    MAX_ROW_BYTES,
    SHARD_DIR,
    InventoryError,
    Row,
    encode_shard,
    iter_rows,
    merge_rows,
    parse_row,
    shard_path,
)
from git_cvfs.local import writeback
from git_cvfs.local.git import Repo, worktrees
from git_cvfs.local.locks import LOCK_TIMEOUT, file_lock
from git_cvfs.local.worktree import write_bytes, write_stream


def shard_lock(repo: Repo, shard: str, timeout: float = LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    return file_lock(
        repo.cvfs_dir / "locks" / (Path(shard).name + ".lock"),
        what=shard,
        hint="another git-cvfs command is writing the inventory; wait for it to finish and retry",
        timeout=timeout,
    )


def _lines(f: IO[bytes]) -> Iterator[bytes]:
    """A file's lines, none longer than MAX_ROW_BYTES + 1 (iter_rows refuses those)."""
    while line := f.readline(MAX_ROW_BYTES + 1):
        yield line


def _whole_lines(f: IO[bytes]) -> Iterator[bytes | None]:
    """A file's lines, with None standing for a line too long to be a row (skipped unread)."""
    while line := f.readline(MAX_ROW_BYTES + 1):
        if len(line) > MAX_ROW_BYTES and not line.endswith(b"\n"):
            while (rest := f.readline(MAX_ROW_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def shard_files(repo: Repo) -> list[str]:
    shard_dir = repo.root / SHARD_DIR
    if not shard_dir.is_dir():
        return []
    return sorted(f"{SHARD_DIR}/{p.name}" for p in shard_dir.glob("*.jsonl"))


@contextlib.contextmanager
def read_rows(path: Path, where: str) -> Iterator[Iterator[Row]]:
    """The rows of one shard file, streamed (the merge driver's three sides)."""
    with open(path, "rb") as f:
        yield iter_rows(_lines(f), where=where)


def iter_worktree_rows(repo: Repo) -> Iterator[Row]:
    """Every row of the work tree's inventory, one at a time; the index's, where the work tree
    has no .cvfs/index at all (a sparse checkout leaves it out)."""
    if not (repo.root / SHARD_DIR).is_dir():
        for shard in _staged_shards(repo):
            with _staged_lines(repo, shard) as lines:
                yield from iter_rows(lines, where=f"{shard} (staged)")
        return
    for shard in shard_files(repo):
        yield from _shard_rows(repo, shard)


def hexes_in_every_worktree(repo: Repo, what: str) -> set[str]:
    """The objects the inventory rows of every work tree of the repository name, committed or
    not: a gitignored file registered in a linked worktree is recorded only in that worktree.
    A worktree whose directory is gone cannot be read: an error, since its rows may be the
    only record of what it registered."""
    found: set[str] = set()
    for tree in worktrees(repo):
        if tree.bare:
            continue
        if tree.prunable or not os.path.isdir(tree.path):
            raise CvfsError(
                f"the worktree {tree.path} is missing: {what} cannot read the inventory rows it holds",
                hint="bring it back (or, if it is gone for good, run `git worktree prune`), then run this again",
            )
        found.update(row.hex for row in iter_worktree_rows(Repo.discover(tree.path)))
    return found


def _shard_rows(repo: Repo, shard: str) -> Iterator[Row]:
    with open(repo.root / shard, "rb") as f:
        yield from iter_rows(_lines(f), where=shard)


def read_rows_of_tree(repo: Repo, tree: str, shards: set[str]) -> dict[str, Row]:
    """The rows of these shards as committed in `tree` (a commit or tree), by path."""
    rows: dict[str, Row] = {}
    for shard in sorted(shards):
        spec = f"{tree}:{shard}"
        if subprocess.run(["git", "cat-file", "-e", spec], cwd=repo.root, capture_output=True).returncode != 0:
            continue
        data = subprocess.run(["git", "cat-file", "blob", spec], cwd=repo.root, capture_output=True, check=True).stdout
        rows.update({row.path: row for row in iter_rows(data.splitlines(keepends=True), where=spec)})
    return rows


def _staged_shards(repo: Repo) -> list[str]:
    out = repo.git("ls-files", "-z", "--", f"{SHARD_DIR}/*.jsonl")
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)


# Rows for files git does not hold (`git: false`) each stand for a file, as index entries do,
# and commands hold one object per file; git-cvfs is built for up to ~10^5 of them. A
# committed inventory claiming more is refused, clearly, instead of filling memory.
MAX_UNVERSIONED = 100_000


def unversioned_rows(repo: Repo) -> Iterator[Row]:
    """The rows of files git does not track, refused past MAX_UNVERSIONED."""
    count = 0
    for row in iter_worktree_rows(repo):
        if not row.git:
            count += 1
            check_unversioned_count(count)
            yield row


def check_unversioned_count(count: int) -> None:
    if count > MAX_UNVERSIONED:
        raise InventoryError(
            f"the inventory records more than {MAX_UNVERSIONED} files git does not track; "
            "git-cvfs handles up to that many",
            hint="if this inventory is not yours, do not use it; otherwise split the data across repositories",
        )


def check_inventory(repo: Repo, *, remember: bool = False) -> None:
    """Read every row, holding none: raises InventoryError naming the first bad one.

    remember: skip the shards this machine has read and found sound, unchanged since (as
    .git/cvfs/checked-shards-* notes them: device, inode, size, mtime and ctime, with the rules
    they were checked by). `status` reads all 2,000 rows of a 2,000-file repository each time
    otherwise: a third of its run. A write changes the ctime, which no user can set back; a
    shard changed within the clock's granularity of its check is not noted (git's racy rule).
    """
    rules = _rules_token() if remember else None
    if rules is None or not (repo.root / SHARD_DIR).is_dir():
        for _ in iter_worktree_rows(repo):
            pass
        return
    memo = checked_shards_memo(repo)
    try:
        noted = memo.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    except OSError:
        noted = []
    known = set(noted[1:]) if noted and noted[0] == rules else set()
    sound: list[str] = []
    for shard in shard_files(repo):
        before = _stat(repo.root / shard)
        key = _stat_key(shard, before)
        if key is not None and key in known:
            sound.append(key)
            continue
        for _ in _shard_rows(repo, shard):
            pass
        after = _stat(repo.root / shard)
        if key is not None and key == _stat_key(shard, after) and after is not None and _settled(after):
            sound.append(key)
    if set(sound) != known:
        tmp = memo.with_name(f"{CHECKED_SHARDS}.{os.getpid()}.tmp")
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes("\n".join([rules, *sound]).encode("utf-8", "surrogateescape"))
            os.replace(tmp, memo)
        except OSError:  # a memo: failing to write it (a full disk) costs only time, and leaves nothing
            with contextlib.suppress(OSError):
                tmp.unlink()


CHECKED_SHARDS = "checked-shards"


def checked_shards_memo(repo: Repo) -> Path:
    """The memo of this work tree: .git/cvfs is shared by a repository's worktrees, and one memo
    for all of them would be rewritten by each in turn, every note of the others dropped."""
    tree = hashlib.sha256(os.fsencode(repo.root)).hexdigest()[:16]
    return repo.cvfs_dir / f"{CHECKED_SHARDS}-{tree}"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _stat_key(shard: str, st: os.stat_result | None) -> str | None:
    if st is None or "\n" in shard:  # a name git allows, which would end its line in the memo early
        return None
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {shard}"


SETTLED_NS = 2_000_000_000


def _settled(st: os.stat_result) -> bool:
    """Written more than SETTLED_NS ago: a later write in the same clock tick could otherwise
    leave mtime and ctime as they were (git's racy-clean rule, with a wide margin)."""
    import time

    return time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > SETTLED_NS


def _rules_token() -> str | None:
    """What the check was made by: the modules holding the row rules, as installed (None where
    they are not files to stat, as in a zip: then nothing is remembered)."""
    from git_cvfs import __version__
    from git_cvfs.format import inventory, paths, ref

    parts = [__version__]
    for module in (inventory, paths, ref):
        try:
            st = os.stat(module.__file__ or "")
        except OSError:
            return None
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "rules " + " ".join(parts)


def read_worktree_inventory(repo: Repo, keep: Callable[[Row], bool] | None = None) -> dict[str, Row]:
    """Rows by path: all of them, or those `keep` picks (callers pick what they need, so a
    hostile inventory of a million rows costs memory only for the rows that matter)."""
    return {row.path: row for row in iter_worktree_rows(repo) if keep is None or keep(row)}


@contextlib.contextmanager
def _staged_lines(repo: Repo, shard: str) -> Iterator[Iterator[bytes]]:
    """The staged shard's lines, streamed from `git cat-file` (none when nothing is staged)."""
    present = subprocess.run(
        ["git", "cat-file", "-e", f":{shard}"], cwd=repo.root, capture_output=True, check=False
    ).returncode
    if present != 0:
        yield iter(())
        return
    proc = subprocess.Popen(["git", "cat-file", "blob", f":{shard}"], cwd=repo.root, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        yield _lines(proc.stdout)
    finally:
        proc.stdout.close()
        if proc.wait() not in (0, -13):  # -13: SIGPIPE, when a bad row stopped the read early
            raise GitError(f"`git cat-file blob :{shard}` failed (exit {proc.returncode})")


class _Unchanged(Exception):
    """The rewritten shard would be what is already on disk: the write is abandoned."""


def update_inventory(
    repo: Repo,
    changes: Mapping[str, Row | None],
    *,
    from_index: bool,
    drop: Callable[[Row], bool] | None = None,
) -> list[str]:
    """Apply row changes (None deletes a row) shard by shard; returns the shard paths that changed.

    from_index: start from the staged shard (pre-commit), else from the work tree's.
    drop: also delete every row it picks, in every shard (reconcile --fix-index, prune).
    """
    by_shard: dict[str, dict[str, Row | None]] = defaultdict(dict)
    for path, row in changes.items():
        by_shard[shard_path(path)][path] = row
    shards = set(by_shard)
    if drop is not None:
        shards |= set(shard_files(repo))
    written: list[str] = []
    for shard in sorted(shards):
        with shard_lock(repo, shard):
            if _rewrite_shard(repo, shard, sorted(by_shard[shard].items()), from_index=from_index, drop=drop):
                written.append(shard)
                crash_point("inventory:after-shard")
    return written


def _rewrite_shard(
    repo: Repo,
    shard: str,
    changes: list[tuple[str, Row | None]],
    *,
    from_index: bool,
    drop: Callable[[Row], bool] | None,
) -> bool:
    file = repo.root / shard
    current = _file_digest(file)  # None when there is no file
    kept = 0
    with contextlib.ExitStack() as stack:
        if from_index:
            lines = stack.enter_context(_staged_lines(repo, shard))
        elif current is not None:
            lines = _lines(stack.enter_context(open(file, "rb")))
        else:
            lines = iter(())
        last_line = [b""]

        def remembered(lines: Iterator[bytes]) -> Iterator[bytes]:
            for line in lines:
                last_line[0] = line
                yield line

        # iter_rows reads exactly one line for each row it yields, and merge_rows yields a row
        # it passes through before reading the next: so when a row is kept as it was, the last
        # line read is its own, written back as it came instead of encoded again (5 us a row).
        rows = iter_rows(remembered(lines), where=f"{shard} (staged)" if from_index else shard)

        def fill(out: int) -> None:
            nonlocal kept
            digest = hashlib.sha256()
            changed = False
            buf = bytearray()
            for old, new in merge_rows(rows, changes):
                if new is not None and drop is not None and drop(new):
                    new = None
                if new is None:
                    changed = changed or old is not None
                    continue
                kept += 1
                if new is old:
                    line = last_line[0] if last_line[0].endswith(b"\n") else last_line[0] + b"\n"
                else:
                    changed = changed or new != old
                    line = new.encode()
                digest.update(line)
                buf += line
                if len(buf) >= 1 << 16:
                    writeback.write_all(out, buf)
                    buf.clear()
            writeback.write_all(out, buf)
            if not kept or (not changed and digest.digest() == current):
                raise _Unchanged  # an empty shard is removed below, never written

        try:
            write_stream(repo.root, shard, fill, create_dirs=True)
            return True
        except _Unchanged:
            if kept or current is None:
                return False
    file.unlink()
    return True


def _file_digest(path: Path) -> bytes | None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    digest = hashlib.sha256()
    with f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def replace_inventory(repo: Repo, rows: Mapping[str, Row]) -> list[str]:
    """Write the whole inventory from scratch (reconcile --from-blob): every shard rewritten, empty ones removed."""
    by_shard: dict[str, list[Row]] = defaultdict(list)
    for row in rows.values():
        by_shard[shard_path(row.path)].append(row)
    written = []
    for shard in sorted(set(shard_files(repo)) | set(by_shard)):
        with shard_lock(repo, shard):
            if shard in by_shard:
                write_bytes(repo.root, shard, encode_shard(by_shard[shard]), create_dirs=True)
            else:
                (repo.root / shard).unlink(missing_ok=True)
        written.append(shard)
    return written


def tolerant_rows(repo: Repo) -> tuple[dict[str, Row], list[str]]:
    """Every row that parses, from every shard, whatever else the shard holds (a repair
    reads what it can); and one message per line it could not use."""
    rows: dict[str, Row] = {}
    problems: list[str] = []
    for shard in shard_files(repo):
        with open(repo.root / shard, "rb") as f:
            for lineno, line in enumerate(_whole_lines(f), 1):
                if line is None:
                    problems.append(f"{shard}:{lineno}: a row of more than {MAX_ROW_BYTES} bytes")
                    continue
                if not line.strip():
                    continue
                try:
                    row = parse_row(line, where=f"{shard}:{lineno}")
                except InventoryError as exc:
                    problems.append(exc.message)
                    continue
                rows[row.path] = row
    return rows, problems
