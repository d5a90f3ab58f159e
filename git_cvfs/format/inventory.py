"""Inventory shard rows: schema, canonical JSON Lines, shard names, three-way merge."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from git_cvfs.errors import CvfsError, RefError, UnsafePathError
from git_cvfs.format.ref import MAX_SIZE, OID_PREFIX, parse_oid

SHARD_DIR = ".cvfs/index"
MAX_PATH = 4096
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


def validate_repo_path(path: object) -> str:
    """A work-tree-relative path that cannot escape the work tree or reach into .git."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"invalid path {path!r}")
    if len(path) > MAX_PATH or "\0" in path or "\\" in path:
        raise UnsafePathError(f"unsafe path {path[:80]!r}")
    if path.startswith("/"):
        raise UnsafePathError(f"unsafe path {path[:80]!r}: absolute paths are not allowed")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"unsafe path {path[:80]!r}: empty, '.' or '..' component")
        if part.lower().rstrip(". ") == ".git":
            raise UnsafePathError(f"unsafe path {path[:80]!r}: it points into .git")
    return path


def shard_name(path: str) -> str:
    parts = path.split("/")
    if len(parts) == 1:
        return "_root.jsonl"
    return "__".join(parts[: min(2, len(parts) - 1)]) + ".jsonl"


def shard_path(path: str) -> str:
    return f"{SHARD_DIR}/{shard_name(path)}"


@dataclass(frozen=True)
class Row:
    path: str
    hex: str
    size: int
    git: bool = True
    archives: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def oid(self) -> str:
        return OID_PREFIX + self.hex

    def to_json(self) -> dict[str, object]:
        return {"archives": self.archives, "git": self.git, "oid": self.oid, "path": self.path, "size": self.size}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def parse_row(line: bytes, *, where: str = "inventory") -> Row:
    try:
        obj = json.loads(line)
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
    if not isinstance(archives, dict) or not all(
        isinstance(name, str)
        and isinstance(facts, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in facts.items())
        for name, facts in archives.items()
    ):
        raise InventoryError(f"{where}: {path}: 'archives' must map names to string facts")
    return Row(path, hex_digest, size, git, archives)


def parse_shard(data: bytes, *, where: str = "inventory") -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        row = parse_row(line, where=f"{where}:{lineno}")
        if row.path in rows:
            raise InventoryError(f"{where}:{lineno}: {row.path} appears twice")
        rows[row.path] = row
    return rows


def encode_shard(rows: Iterable[Row]) -> bytes:
    return b"".join(row.encode() for row in sorted(rows, key=lambda r: r.path))


@dataclass
class MergeResult:
    rows: dict[str, Row]
    conflicts: list[str]


def merge_shards(base: dict[str, Row], ours: dict[str, Row], theirs: dict[str, Row]) -> MergeResult:
    """Three-way merge by path: a path changed on one side takes that side; changed differently on both is a conflict."""
    merged: dict[str, Row] = {}
    conflicts: list[str] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t:
            chosen = o
        elif o == b:
            chosen = t
        elif t == b:
            chosen = o
        elif o is not None and t is not None and (o.hex, o.size, o.git) == (t.hex, t.size, t.git):
            # Same object recorded on both sides: union what each side saw in the archives.
            chosen = Row(o.path, o.hex, o.size, o.git, {**t.archives, **o.archives})
        else:
            conflicts.append(path)
            chosen = o
        if chosen is not None:
            merged[path] = chosen
    return MergeResult(merged, conflicts)
