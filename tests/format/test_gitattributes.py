"""Reading .gitattributes of a commit that is not checked out, as git reads them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from git_cvfs.format.gitattributes import (
    CommitAttributes,
    drop_driver,
    escape_glob,
    filter_rules,
    quote_c,
    swap_attrs,
    unquote_c,
)


@pytest.mark.parametrize("path", ["plain.bin", "a b/c d.bin", 'q"uo\\te', "d/é.bin", "tab\there", "\x01ctl"])
def test_quote_round_trips_and_matches_git(tmp_path: Path, path: str) -> None:
    assert unquote_c(quote_c(path)) == path
    if "/" not in path:
        repo = tmp_path / "repo"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (repo / path).write_bytes(b"x")
        out = subprocess.run(
            ["git", "-c", "core.quotePath=true", "ls-files", "--others"], cwd=repo, capture_output=True, text=True
        ).stdout
        assert out.rstrip("\n") == quote_c(path)


def test_filter_of_follows_git_precedence(tmp_path: Path) -> None:
    """The same files checked by `git check-attr` give the same answers."""
    files = {
        ".gitattributes": b'*.bin filter=lfs\n/top.dat filter=cvfs\n"with space/*" filter=cvfs\ndocs/** -filter\n',
        "sub/.gitattributes": b"*.bin !filter\nkeep.bin filter=other\n",
    }
    paths = ["a.bin", "x/y/a.bin", "top.dat", "x/top.dat", "with space/f", "docs/a.bin", "sub/a.bin", "sub/keep.bin"]
    attrs = CommitAttributes(
        {"": filter_rules(files[".gitattributes"]), "sub": filter_rules(files["sub/.gitattributes"])}
    )
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(content)
    out = subprocess.run(["git", "check-attr", "-z", "filter", "--", *paths], cwd=repo, capture_output=True).stdout
    fields = out.decode().split("\0")
    git_says = {fields[i]: fields[i + 2] for i in range(0, len(fields) - 2, 3)}
    for path in paths:
        value = attrs.filter_of(path)
        assert (value or "unset") == (git_says[path] if git_says[path] != "unspecified" else "unset"), path


def test_escape_glob_names_exactly_one_path() -> None:
    attrs = CommitAttributes(
        {"": filter_rules(f"{quote_c(escape_glob('d/[a]*?.bin'), spaces=True)} filter=cvfs\n".encode())}
    )
    assert attrs.filter_of("d/[a]*?.bin") == "cvfs"
    assert attrs.filter_of("d/a-x.bin") is None and attrs.filter_of("x/d/[a]*?.bin") is None


def test_swap_and_drop_leave_other_lines_byte_for_byte() -> None:
    lfs = b"# filter=lfs stays a comment\n*.psd filter=lfs diff=lfs merge=lfs -text lockable\n*.txt eol=lf\n"
    assert swap_attrs(lfs, {"filter=lfs": "filter=cvfs", "diff=lfs": "diff=cvfs", "merge=lfs": "merge=binary"}) == (
        b"# filter=lfs stays a comment\n*.psd filter=cvfs diff=cvfs merge=binary -text lockable\n*.txt eol=lf\n"
    )
    ours = b"data/** filter=cvfs diff=cvfs merge=binary -text\n.cvfs/index/*.jsonl merge=cvfs-index -text\n*.txt eol=lf\nx filter=cvfs eol=crlf\n"
    assert drop_driver(ours, "cvfs", (".cvfs/index/*.jsonl merge=cvfs-index -text",)) == b"*.txt eol=lf\nx eol=crlf\n"
