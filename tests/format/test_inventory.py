from __future__ import annotations

import pytest

from git_cvfs.errors import UnsafePathError
from git_cvfs.format.inventory import (
    InventoryError,
    Row,
    encode_shard,
    merge_shards,
    parse_row,
    parse_shard,
    shard_name,
    validate_repo_path,
)

HEX = "cd" * 32


def test_row_encoding_is_canonical_and_byte_exact() -> None:
    row = Row("data/runs/a.npy", HEX, 123, True, {"primary": {"etag": '"9b2c"', "key": "objects/cd/cd/" + HEX}})
    assert row.encode() == (
        b'{"archives":{"primary":{"etag":"\\"9b2c\\"","key":"objects/cd/cd/' + HEX.encode() + b'"}},'
        b'"git":true,"oid":"sha256:' + HEX.encode() + b'","path":"data/runs/a.npy","size":123}\n'
    )
    assert parse_row(row.encode()) == row


def test_shard_is_sorted_by_path() -> None:
    rows = [Row("b/x", HEX, 1), Row("a/y", HEX, 2)]
    assert [r.path for r in parse_shard(encode_shard(rows)).values()] == ["a/y", "b/x"]


@pytest.mark.parametrize(
    ("path", "shard"),
    [
        ("data/runs/x/y.npy", "data__runs.jsonl"),
        ("data/runs/y.npy", "data__runs.jsonl"),
        ("data/x.npy", "data.jsonl"),
        ("x.npy", "_root.jsonl"),
    ],
)
def test_shard_names(path: str, shard: str) -> None:
    assert shard_name(path) == shard


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "./a",
        ".git/config",
        "a/.git/hooks/x",
        ".GIT/x",
        "a\\b",
        "a\0b",
        "x" * 5000,
        "a/.git./b",
    ],
)
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError):
        validate_repo_path(path)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"[]",
        b'{"path":"a","oid":"sha256:' + HEX.encode() + b'","size":1,"git":true}',  # no archives
        b'{"archives":{},"git":true,"oid":"sha256:' + HEX.encode() + b'","path":"../../etc/passwd","size":1}',
        b'{"archives":{},"git":true,"oid":"sha256:../x","path":"a","size":1}',
        b'{"archives":{},"git":"yes","oid":"sha256:' + HEX.encode() + b'","path":"a","size":1}',
        b'{"archives":{},"git":true,"oid":"sha256:' + HEX.encode() + b'","path":"a","size":-5}',
        b'{"archives":{"primary":{"key":5}},"git":true,"oid":"sha256:' + HEX.encode() + b'","path":"a","size":1}',
        b'{"archives":{},"git":true,"oid":"sha256:' + HEX.encode() + b'","path":".git/hooks/pre-commit","size":1}',
    ],
)
def test_bad_rows_are_refused_with_location(line: bytes) -> None:
    with pytest.raises(InventoryError) as info:
        parse_shard(b"\n" + line + b"\n", where=".cvfs/index/a.jsonl")
    assert info.value.message.startswith(".cvfs/index/a.jsonl:2")


def test_duplicate_paths_are_refused() -> None:
    row = Row("a", HEX, 1).encode()
    with pytest.raises(InventoryError):
        parse_shard(row + row)


def test_merge_takes_each_sides_additions_without_conflict() -> None:
    base = {"a": Row("a", HEX, 1)}
    ours = {**base, "b": Row("b", HEX, 2)}
    theirs = {**base, "c": Row("c", HEX, 3)}
    result = merge_shards(base, ours, theirs)
    assert sorted(result.rows) == ["a", "b", "c"] and not result.conflicts


def test_merge_deletion_on_one_side_wins_over_unchanged() -> None:
    base = {"a": Row("a", HEX, 1), "b": Row("b", HEX, 2)}
    result = merge_shards(base, {"a": base["a"]}, base)
    assert sorted(result.rows) == ["a"] and not result.conflicts


def test_merge_same_path_changed_both_ways_is_a_conflict() -> None:
    base = {"a": Row("a", HEX, 1)}
    result = merge_shards(base, {"a": Row("a", "ef" * 32, 1)}, {"a": Row("a", "01" * 32, 1)})
    assert result.conflicts == ["a"]


def test_merge_same_object_both_sides_unions_archive_facts() -> None:
    base: dict[str, Row] = {}
    ours = {"a": Row("a", HEX, 1, True, {"primary": {"etag": "1", "key": "k"}})}
    theirs = {"a": Row("a", HEX, 1, True, {"secondary": {"etag": "2", "key": "k"}})}
    result = merge_shards(base, ours, theirs)
    assert not result.conflicts and set(result.rows["a"].archives) == {"primary", "secondary"}
