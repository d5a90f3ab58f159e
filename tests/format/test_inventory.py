from __future__ import annotations

import pytest

from git_cvfs.errors import UnsafePathError
from git_cvfs.format.inventory import (
    MAX_ROW_BYTES,
    InventoryError,
    Row,
    encode_shard,
    iter_rows,
    merge_rows,
    merge_rows_3way,
    merge_shards,
    parse_row,
    parse_shard,
    shard_name,
)
from git_cvfs.format.paths import validate_repo_path

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
        # The aliases of .git that NTFS and HFS+ open as .git (git's verify_path, dulwich's validators).
        ".git. /x",
        "GIT~1/config",
        "a/git~1",
        ".git::$INDEX_ALLOCATION/x",
        ".g\u200cit/config",
        "\ufeff.git/config",
        "a/.GI\u200dT/hooks/pre-commit",
    ],
)
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError):
        validate_repo_path(path)


@pytest.mark.parametrize("path", ["data/a.bin", "data/.gitkeep", ".github/workflows/ci.yml", "x~1/y", "données/a.bin"])
def test_ordinary_paths_pass(path: str) -> None:
    assert validate_repo_path(path) == path


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


def test_rows_must_come_in_order_and_once() -> None:
    a, b = Row("a", HEX, 1).encode(), Row("b", HEX, 2).encode()
    assert [r.path for r in iter_rows([a, b])] == ["a", "b"]
    with pytest.raises(InventoryError, match=r"shard:2: a appears twice"):
        list(iter_rows([a, a], where="shard"))
    with pytest.raises(InventoryError, match=r"shard:2: a is out of order \(after b\)"):
        list(iter_rows([b, a], where="shard"))


def test_a_line_longer_than_the_cap_is_refused_before_it_is_parsed() -> None:
    long = b'{"path":"' + b"x" * MAX_ROW_BYTES + b'"}\n'
    with pytest.raises(InventoryError, match=rf"shard:1: a row of more than {MAX_ROW_BYTES} bytes"):
        list(iter_rows([long], where="shard"))


def test_merge_rows_walks_rows_and_sorted_changes_together() -> None:
    rows = [Row("b", HEX, 1), Row("d", HEX, 2), Row("f", HEX, 3)]
    new_a, new_d = Row("a", HEX, 9), Row("d", HEX, 8)
    merged = list(merge_rows(rows, [("a", new_a), ("d", new_d), ("e", None), ("f", None)]))
    assert merged == [(None, new_a), (rows[0], rows[0]), (rows[1], new_d), (None, None), (rows[2], None)]


def test_three_way_merge_streams_agree_with_the_dict_merge() -> None:
    base = {p: Row(p, HEX, 1) for p in "abcd"}
    ours = {**base, "b": Row("b", HEX, 2), "e": Row("e", HEX, 5)}
    del ours["c"]
    theirs = {**base, "d": Row("d", HEX, 4), "f": Row("f", HEX, 6)}
    streamed = [(p, r) for p, r, _ in merge_rows_3way(*(sorted(x.values()) for x in (base, ours, theirs)))]
    assert [(p, r) for p, r in streamed if r is not None] == sorted(merge_shards(base, ours, theirs).rows.items())
    assert dict(streamed)["c"] is None  # deleted on our side, unchanged on theirs
