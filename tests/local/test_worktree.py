from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from git_cvfs.errors import ArchiveError, ChangedUnderfootError, IntegrityError, UnsafePathError
from git_cvfs.local.worktree import read_head, replace_file, replace_file_fetched, write_bytes


def test_replace_is_atomic_and_keeps_mode(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "f"
    target.write_bytes(b"ref")
    target.chmod(0o755)
    src = tmp_path / "src"
    src.write_bytes(b"content" * 1000)
    st = replace_file(tmp_path, "d/f", src, expect_head=b"ref")
    assert target.read_bytes() == b"content" * 1000
    assert st.st_mode & 0o777 == 0o755
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["f"]  # no temp files left


def test_replace_keeps_a_file_changed_meanwhile(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"user edit")
    src = root / "src"
    src.write_bytes(b"archived")
    with pytest.raises(ChangedUnderfootError):
        replace_file(root, "f", src, expect_head=b"ref")
    assert (root / "f").read_bytes() == b"user edit"
    assert sorted(p.name for p in root.iterdir()) == ["f", "src"]


def _copied_from(src: Path) -> Callable[[BinaryIO], None]:
    """A fetch as a directory archive does it: the stored file copied in order."""

    def fetch(out: BinaryIO) -> None:
        with open(src, "rb") as f:
            shutil.copyfileobj(f, out)

    return fetch


def test_verified_replace_writes_bytes_that_hash_right_and_leaves_them_out_of_gits_racy_second(
    tmp_path: Path,
) -> None:
    root = tmp_path / "w"
    root.mkdir()
    data = os.urandom(3 << 20)  # several copy chunks
    (root / "f").write_bytes(b"ref")
    (root / "src").write_bytes(data)
    st = replace_file_fetched(
        root, "f", _copied_from(root / "src"), hashlib.sha256(data).hexdigest(), len(data), expect_head=b"ref"
    )
    assert (root / "f").read_bytes() == data and st.st_size == len(data)
    assert st.st_mtime < time.time() - 0.5  # a second back: git's next status does not re-hash it
    assert sorted(p.name for p in root.iterdir()) == ["f", "src"]


@pytest.mark.parametrize(
    "stored",
    [
        b"x" + bytes(99_999),  # same size, other bytes
        bytes(99_999),  # one byte short
        bytes(100_000) + b"tail",  # the right bytes, then more
    ],
)
def test_verified_replace_of_wrong_bytes_leaves_the_file_as_it_was(tmp_path: Path, stored: bytes) -> None:
    root = tmp_path / "w"
    root.mkdir()
    want = bytes(100_000)
    (root / "f").write_bytes(b"ref")
    (root / "src").write_bytes(stored)
    with pytest.raises(IntegrityError):
        replace_file_fetched(
            root, "f", _copied_from(root / "src"), hashlib.sha256(want).hexdigest(), len(want), expect_head=b"ref"
        )
    assert (root / "f").read_bytes() == b"ref"
    assert sorted(p.name for p in root.iterdir()) == ["f", "src"]  # no temp file left


def _ranged(data: bytes, part: int) -> Callable[[BinaryIO], None]:
    """A download as ranged GETs would write it: the last range first, each at its offset."""

    def fetch(out: BinaryIO) -> None:
        for start in reversed(range(0, len(data), part)):
            out.seek(start)
            out.write(data[start : start + part])

    return fetch


def test_fetched_replace_writes_ranges_landing_in_any_order(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    data = os.urandom((3 << 20) + 123)  # several read-back chunks, the last one short
    (root / "f").write_bytes(b"ref")
    (root / "f").chmod(0o640)
    st = replace_file_fetched(
        root, "f", _ranged(data, 1 << 20), hashlib.sha256(data).hexdigest(), len(data), expect_head=b"ref"
    )
    assert (root / "f").read_bytes() == data and st.st_size == len(data)
    assert st.st_mode & 0o777 == 0o640
    assert st.st_mtime < time.time() - 0.5  # a second back: git's next status does not re-hash it
    assert [p.name for p in root.iterdir()] == ["f"]


@pytest.mark.parametrize(
    "sent",
    [
        b"x" + bytes(99_999),  # same size, other bytes
        bytes(99_999),  # one byte short
        bytes(100_000) + b"tail",  # the right bytes, then more
        bytes(50_000),  # a download that stopped half way without saying so
    ],
)
def test_fetched_replace_of_wrong_bytes_leaves_the_file_as_it_was(tmp_path: Path, sent: bytes) -> None:
    root = tmp_path / "w"
    root.mkdir()
    want = bytes(100_000)
    (root / "f").write_bytes(b"ref")
    with pytest.raises(IntegrityError):
        replace_file_fetched(root, "f", _ranged(sent, 30_000), hashlib.sha256(want).hexdigest(), len(want))
    assert (root / "f").read_bytes() == b"ref"
    assert [p.name for p in root.iterdir()] == ["f"]  # no temp file left


def test_fetched_replace_that_fails_midway_leaves_no_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"ref")

    def fetch(out: BinaryIO) -> None:
        out.write(bytes(1000))
        raise ArchiveError("archive primary: GET failed: connection reset")

    with pytest.raises(ArchiveError):
        replace_file_fetched(root, "f", fetch, hashlib.sha256(bytes(2000)).hexdigest(), 2000)
    assert (root / "f").read_bytes() == b"ref"
    assert [p.name for p in root.iterdir()] == ["f"]


def test_symlinked_file_is_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "f")
    src = tmp_path / "src"
    src.write_bytes(b"evil")
    with pytest.raises(UnsafePathError):
        replace_file(root, "f", src)
    with pytest.raises(UnsafePathError):
        write_bytes(root, "f", b"evil")
    with pytest.raises(UnsafePathError):
        read_head(root, "f")
    assert outside.read_bytes() == b"precious"


def test_symlinked_directory_on_the_path_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f").write_bytes(b"precious")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(elsewhere, root / "data")
    with pytest.raises(UnsafePathError) as info:
        write_bytes(root, "data/f", b"evil")
    assert "symlink" in info.value.message
    assert (elsewhere / "f").read_bytes() == b"precious"


@pytest.mark.parametrize("path", ["../escape", "/abs", ".git/config", "a/../../x"])
def test_hostile_paths_never_reach_the_disk(tmp_path: Path, path: str) -> None:
    root = tmp_path / "root"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("keep")
    with pytest.raises(UnsafePathError):
        write_bytes(root, path, b"evil", create_dirs=True)
    assert (root / ".git" / "config").read_text() == "keep"
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("write", ["replace_file", "write_bytes", "replace_file_fetched", "place_file"])
def test_every_work_tree_write_flushes_the_new_bytes_before_the_rename(
    write: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the fsync, a power cut after the rename can leave a file of zeros under the
    name: the order fsync (of the temporary file) then rename is what makes the write atomic."""
    from git_cvfs.local import worktree

    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_bytes(b"ref")
    content = b"content" * 1000
    src = tmp_path / "src"
    src.write_bytes(content)
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a: str, b: str, **kw: object) -> None:
        events.append(("rename", str(a)))
        real_replace(a, b, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(worktree.os, "fsync", fsync)
    monkeypatch.setattr(worktree.os, "replace", replace)
    if write == "replace_file":
        worktree.replace_file(root, "f", src)
    elif write == "write_bytes":
        worktree.write_bytes(root, "f", content)
    elif write == "place_file":
        worktree.place_file(root, "f", src)
    else:

        def fetch(out: BinaryIO) -> None:
            out.write(content)

        worktree.replace_file_fetched(root, "f", fetch, hashlib.sha256(content).hexdigest(), len(content))
    assert (root / "f").read_bytes() == content
    renamed = [name for kind, name in events if kind == "rename"]
    assert len(renamed) == 1 and renamed[0].endswith(".tmp")
    flushed_first = [name for kind, name in events[: events.index(("rename", renamed[0]))] if kind == "fsync"]
    assert any(name.endswith(renamed[0]) for name in flushed_first), events
