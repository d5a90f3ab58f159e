"""status skips the inventory shards it has checked and found sound, and only those: a shard
written since (whatever its mtime says), a shard written too recently to be sure of, or a
check made by other rules is read again."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from git_cvfs.format.inventory import InventoryError, Row, encode_shard
from git_cvfs.local import index_store
from git_cvfs.local.git import Repo
from git_cvfs.local.index_store import check_inventory, checked_shards_memo

HEX = "ab" * 32


def repo_with_shards(tmp_path: Path, names: list[str]) -> Repo:
    root = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".cvfs/index").mkdir(parents=True)
    for name in names:
        rows = {f"{name}/f{i}": Row(f"{name}/f{i}", HEX, 100 + i) for i in range(3)}
        (root / f".cvfs/index/{name}.jsonl").write_bytes(encode_shard(rows.values()))
    return Repo.discover(root)


def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = index_store.iter_rows

    def counting(lines: Iterable[bytes], *, where: str = "inventory") -> Iterator[Row]:
        seen.append(where)
        return real(lines, where=where)

    monkeypatch.setattr(index_store, "iter_rows", counting)
    return seen


def test_a_sound_shard_is_read_once_and_a_rewritten_one_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = repo_with_shards(tmp_path, ["a", "b"])
    monkeypatch.setattr(index_store, "SETTLED_NS", 0)
    seen = reads(monkeypatch)
    check_inventory(repo, remember=True)
    assert seen == [".cvfs/index/a.jsonl", ".cvfs/index/b.jsonl"]
    seen.clear()
    check_inventory(repo, remember=True)
    assert seen == []
    # an attacker's edit: same size, the mtime put back; the ctime moves regardless
    shard = repo.root / ".cvfs/index/b.jsonl"
    before = shard.stat()
    shard.write_bytes(shard.read_bytes().replace(b'"size":101', b'"size":1e2'))
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert shard.stat().st_size == before.st_size
    with pytest.raises(InventoryError, match=r"b\.jsonl:2: .*invalid size"):
        check_inventory(repo, remember=True)
    assert seen == [".cvfs/index/b.jsonl"]
    with pytest.raises(InventoryError):  # refused every time, not once
        check_inventory(repo, remember=True)


def test_a_shard_written_just_now_is_not_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = repo_with_shards(tmp_path, ["a"])
    seen = reads(monkeypatch)
    check_inventory(repo, remember=True)
    check_inventory(repo, remember=True)
    assert seen == [".cvfs/index/a.jsonl"] * 2  # within the clock's reach of a write: read each time


def test_other_rules_check_again_and_without_remember_every_shard_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repo_with_shards(tmp_path, ["a"])
    monkeypatch.setattr(index_store, "SETTLED_NS", 0)
    seen = reads(monkeypatch)
    check_inventory(repo, remember=True)
    memo = checked_shards_memo(repo)
    first, _, rest = memo.read_text().partition("\n")
    assert first.startswith("rules ") and rest.endswith(" .cvfs/index/a.jsonl")
    memo.write_text("rules of another version\n" + rest)
    seen.clear()
    check_inventory(repo, remember=True)
    assert seen == [".cvfs/index/a.jsonl"]
    seen.clear()
    check_inventory(repo)  # fsck's way: no memo believed
    assert seen == [".cvfs/index/a.jsonl"]


def test_a_shard_name_with_a_newline_is_never_noted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A committed file name may hold a newline: noted, it would write a second line of its
    choosing into the memo."""
    repo = repo_with_shards(tmp_path, ["a"])
    (repo.root / ".cvfs/index/x\n0 0 0 0 0 planted.jsonl").write_bytes(encode_shard([Row("x/f", HEX, 1)]))
    monkeypatch.setattr(index_store, "SETTLED_NS", 0)
    check_inventory(repo, remember=True)
    lines = (checked_shards_memo(repo)).read_text().split("\n")
    assert len(lines) == 2 and lines[1].endswith(" .cvfs/index/a.jsonl")


def test_each_worktree_keeps_its_own_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = repo_with_shards(tmp_path, ["a"])
    subprocess.run(["git", "add", "-A"], cwd=repo.root, check=True)
    subprocess.run(["git", "commit", "-qm", "shards"], cwd=repo.root, check=True)
    subprocess.run(["git", "worktree", "add", "-q", str(tmp_path / "w2")], cwd=repo.root, check=True)
    other = Repo.discover(tmp_path / "w2")
    assert other.cvfs_dir == repo.cvfs_dir  # shared: the memo must not be
    monkeypatch.setattr(index_store, "SETTLED_NS", 0)
    seen = reads(monkeypatch)
    check_inventory(repo, remember=True)
    check_inventory(other, remember=True)
    seen.clear()
    check_inventory(repo, remember=True)
    check_inventory(other, remember=True)
    assert seen == []
