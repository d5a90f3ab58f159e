"""Inventory shard rows: schema, canonical JSON Lines, shard names, three-way merge."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from git_cvfs.errors import CvfsError, RefError, UnsafePathError
from git_cvfs.format.paths import validate_repo_path
from git_cvfs.format.ref import MAX_SIZE, OID_PREFIX, parse_oid

SHARD_DIR = ".cvfs/index"
_ROW_KEYS = {"archives", "git", "oid", "path", "size"}


class InventoryError(CvfsError):
    """A damaged or hostile inventory shard; the message names the shard and line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(
            message,
            hint
            or "restore the shard from history (git checkout HEAD -- <shard>, or an older commit), "
            "or delete it and run `git cvfs reconcile --fix-index` to record the files again",
        )


def shard_name(path: str) -> str:
    parts = path.split("/")
    if len(parts) == 1:
        return "_root.jsonl"
    return "__".join(parts[: min(2, len(parts) - 1)]) + ".jsonl"


def shard_path(path: str) -> str:
    return f"{SHARD_DIR}/{shard_name(path)}"


class Row(NamedTuple):
    """One inventory row. A tuple, not a frozen dataclass: a million rows are built in a
    read of a big inventory, and a tuple costs a fifth as much to make. Never mutated."""

    path: str
    hex: str
    size: int
    git: bool = True
    archives: dict[str, dict[str, str]] = {}  # noqa: RUF012 (shared, and never mutated: rows are values)

    @property
    def oid(self) -> str:
        return OID_PREFIX + self.hex

    def to_json(self) -> dict[str, object]:
        return {"archives": self.archives, "git": self.git, "oid": self.oid, "path": self.path, "size": self.size}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


_decode = json.JSONDecoder().decode  # json.loads on bytes first guesses their encoding: rows are UTF-8


def parse_row(line: bytes, *, where: str = "inventory") -> Row:
    try:
        obj = _decode(line.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InventoryError(f"{where}: row is not valid JSON") from None
    if not isinstance(obj, dict) or set(obj) != _ROW_KEYS:
        raise InventoryError(f"{where}: row must have exactly the keys {sorted(_ROW_KEYS)}")
    try:
        path = validate_repo_path(obj["path"])
        hex_digest = parse_oid(obj["oid"])
    except (UnsafePathError, RefError) as exc:
        raise InventoryError(f"{where}: {exc.message}") from None
    size, git, archives = obj["size"], obj["git"], obj["archives"]
    if type(size) is not int or not 0 <= size <= MAX_SIZE:
        raise InventoryError(f"{where}: {path}: invalid size {size!r}")
    if type(git) is not bool:
        raise InventoryError(f"{where}: {path}: 'git' must be true or false")
    if not isinstance(archives, dict):
        raise InventoryError(f"{where}: {path}: 'archives' must map names to string facts")
    for facts in archives.values():  # names are strings: JSON object keys always are
        if not isinstance(facts, dict) or not all(type(v) is str for v in facts.values()):
            raise InventoryError(f"{where}: {path}: 'archives' must map names to string facts")
    return Row(path, hex_digest, size, git, archives)


# A row is a path (at most MAX_PATH bytes), an oid, a size and a few archive facts: a few hundred
# bytes. Shards are committed, so anyone can write one: a longer line is refused before it is
# parsed (a 100 MB line once cost `status` 400 MB).
MAX_ROW_BYTES = 64 << 10


def iter_rows(lines: Iterable[bytes], *, where: str = "inventory") -> Iterator[Row]:
    """Rows from a shard's lines, one at a time, so a shard of any length is read in bounded
    memory. Rows must be in the order encode_shard writes them (sorted by path, each path once):
    a duplicate or a row out of order is an error naming the line."""
    previous: str | None = None
    for lineno, line in enumerate(lines, 1):
        if len(line) > MAX_ROW_BYTES:
            raise InventoryError(f"{where}:{lineno}: a row of more than {MAX_ROW_BYTES} bytes")
        if not line.strip():
            continue
        row = parse_row(line, where=f"{where}:{lineno}")
        if previous is not None and row.path <= previous:
            what = "appears twice" if row.path == previous else f"is out of order (after {previous})"
            raise InventoryError(
                f"{where}:{lineno}: {row.path} {what}",
                hint="run `git cvfs reconcile --from-blob` to rebuild the inventory in order",
            )
        previous = row.path
        yield row


def parse_shard(data: bytes, *, where: str = "inventory") -> dict[str, Row]:
    """A whole shard held in memory (small inputs: tests, the merge driver's sides)."""
    return {row.path: row for row in iter_rows(data.splitlines(), where=where)}


def merge_rows(
    rows: Iterable[Row], changes: Iterable[tuple[str, Row | None]]
) -> Iterator[tuple[Row | None, Row | None]]:
    """Walk a shard's rows (sorted) and changes sorted by path together: (old, new) for each
    path in either, where a change of None deletes. Memory holds one row of each."""
    pending = iter(changes)
    change = next(pending, None)
    for old in rows:
        while change is not None and change[0] < old.path:
            yield None, change[1]
            change = next(pending, None)
        if change is not None and change[0] == old.path:
            yield old, change[1]
            change = next(pending, None)
        else:
            yield old, old
    while change is not None:
        yield None, change[1]
        change = next(pending, None)


def encode_shard(rows: Iterable[Row]) -> bytes:
    return b"".join(row.encode() for row in sorted(rows, key=lambda r: r.path))


class MergeResult(NamedTuple):
    rows: dict[str, Row]
    conflicts: list[str]


def _pick(b: Row | None, o: Row | None, t: Row | None) -> tuple[Row | None, bool]:
    """One path's three-way decision: (the row to keep, whether it is a conflict)."""
    if o == t:
        return o, False
    if o == b:
        return t, False
    if t == b:
        return o, False
    if o is not None and t is not None and (o.hex, o.size, o.git) == (t.hex, t.size, t.git):
        # Same object recorded on both sides: union what each side saw in the archives.
        return Row(o.path, o.hex, o.size, o.git, {**t.archives, **o.archives}), False
    return o, True


def merge_rows_3way(
    base: Iterable[Row], ours: Iterable[Row], theirs: Iterable[Row]
) -> Iterator[tuple[str, Row | None, bool]]:
    """Three-way merge by path of three sorted row streams, one path at a time:
    (path, the row to keep or None, conflict). Memory holds one row of each side."""
    streams = [iter(base), iter(ours), iter(theirs)]
    heads: list[Row | None] = [next(it, None) for it in streams]
    while any(h is not None for h in heads):
        path = min(h.path for h in heads if h is not None)
        here: list[Row | None] = [None, None, None]
        for i, head in enumerate(heads):
            if head is not None and head.path == path:
                here[i] = head
                heads[i] = next(streams[i], None)
        chosen, conflict = _pick(*here)
        yield path, chosen, conflict


def merge_shards(base: dict[str, Row], ours: dict[str, Row], theirs: dict[str, Row]) -> MergeResult:
    """Three-way merge by path: a path changed on one side takes that side; changed differently on both is a conflict."""
    merged: dict[str, Row] = {}
    conflicts: list[str] = []
    by_path = [sorted(side.values(), key=lambda r: r.path) for side in (base, ours, theirs)]
    for path, chosen, conflict in merge_rows_3way(*by_path):
        if conflict:
            conflicts.append(path)
        if chosen is not None:
            merged[path] = chosen
    return MergeResult(merged, conflicts)
