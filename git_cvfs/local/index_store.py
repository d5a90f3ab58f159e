"""Read, lock and write inventory shards (.cvfs/index/*.jsonl) in the work tree."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from git_cvfs.crash import crash_point
from git_cvfs.format.inventory import SHARD_DIR, Row, encode_shard, parse_shard, shard_path
from git_cvfs.local.git import CatFile, Repo
from git_cvfs.local.locks import LOCK_TIMEOUT, file_lock
from git_cvfs.local.worktree import write_bytes


def shard_lock(repo: Repo, shard: str, timeout: float = LOCK_TIMEOUT) -> contextlib.AbstractContextManager[None]:
    return file_lock(
        repo.cvfs_dir / "locks" / (Path(shard).name + ".lock"),
        what=shard,
        hint="another git-cvfs command is writing the inventory; wait for it to finish and retry",
        timeout=timeout,
    )


def read_worktree_inventory(repo: Repo) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    shard_dir = repo.root / SHARD_DIR
    if not shard_dir.is_dir():
        return rows
    for shard in sorted(shard_dir.glob("*.jsonl")):
        rel = f"{SHARD_DIR}/{shard.name}"
        rows.update(parse_shard(shard.read_bytes(), where=rel))
    return rows


def _staged_shard(cat: CatFile, shard: str) -> dict[str, Row]:
    _, data = cat.read(f":{shard}")
    return parse_shard(data, where=f"{shard} (staged)") if data is not None else {}


def update_inventory(repo: Repo, changes: Mapping[str, Row | None], *, from_index: bool) -> list[str]:
    """Apply row changes (None deletes a row) shard by shard; returns the shard paths that changed.

    from_index: start from the staged shard (pre-commit), else from the work tree's.
    """
    by_shard: dict[str, dict[str, Row | None]] = defaultdict(dict)
    for path, row in changes.items():
        by_shard[shard_path(path)][path] = row
    written: list[str] = []
    with contextlib.ExitStack() as stack:
        cat = stack.enter_context(CatFile(repo)) if from_index else None
        for shard in sorted(by_shard):
            with shard_lock(repo, shard):
                file = repo.root / shard
                if cat is not None:
                    rows = _staged_shard(cat, shard)
                else:
                    rows = parse_shard(file.read_bytes(), where=shard) if file.is_file() else {}
                before = encode_shard(rows.values())
                for path, row in by_shard[shard].items():
                    if row is None:
                        rows.pop(path, None)
                    else:
                        rows[path] = row
                after = encode_shard(rows.values())
                current = file.read_bytes() if file.is_file() else b""
                if after == before and current == after:
                    continue
                if not rows:
                    if not file.is_file():
                        continue
                    file.unlink()
                else:
                    write_bytes(repo.root, shard, after, create_dirs=True)
                written.append(shard)
                crash_point("inventory:after-shard")
    return written


def replace_inventory(repo: Repo, rows: Mapping[str, Row]) -> list[str]:
    """Write the whole inventory from scratch (reconcile --from-blob): every shard rewritten, empty ones removed."""
    by_shard: dict[str, list[Row]] = defaultdict(list)
    for row in rows.values():
        by_shard[shard_path(row.path)].append(row)
    shard_dir = repo.root / SHARD_DIR
    existing = {f"{SHARD_DIR}/{p.name}" for p in shard_dir.glob("*.jsonl")} if shard_dir.is_dir() else set()
    written = []
    for shard in sorted(existing | set(by_shard)):
        with shard_lock(repo, shard):
            if shard in by_shard:
                write_bytes(repo.root, shard, encode_shard(by_shard[shard]), create_dirs=True)
            else:
                (repo.root / shard).unlink(missing_ok=True)
        written.append(shard)
    return written
