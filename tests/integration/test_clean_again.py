"""A file git cleans again (touched, rewritten with the same bytes, racily clean) whose bytes are
the ref the index already stages: nothing is written, and the lean cache stays empty. Anything
else (new bytes of the same size, bytes git took from elsewhere) is stored as before."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_cvfs.core.model.buffer import MEMORY_LIMIT
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.plumbing.filter import Staged, clean, local_archives, sampled_apart
from git_cvfs.errors import CvfsError
from git_cvfs.format.ref import Ref
from git_cvfs.local.git import git_blob_id
from tests.conftest import Project, rand, ref_bytes

SMALL = 200_000  # held in memory while it is checked
LARGE = MEMORY_LIMIT + 300_001  # compared with the work-tree file as it comes


def cache_objects(root: Path) -> list[Path]:
    return sorted(p for p in (root / ".git/cvfs/objects").rglob("*") if p.is_file())


def cached_bytes(root: Path, data: bytes) -> bytes | None:
    h = hashlib.sha256(data).hexdigest()
    path = root / ".git/cvfs/objects" / h[:2] / h[2:4] / h
    return path.read_bytes() if path.exists() else None


def touch(path: Path, seconds: int = 5) -> None:
    """A new mtime and ctime, the same bytes: git must read the file again to know."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def committed(project: Project, size: int, seed: int) -> bytes:
    data = rand(size, seed)
    project.write("data/a.bin", data)
    project.commit_all()
    assert cache_objects(project.root) == []  # archived: the lean cache dropped its copy
    return data


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["in-memory", "compared"])
def test_a_touched_file_is_not_copied_into_the_lean_cache(project: Project, size: int) -> None:
    data = committed(project, size, 1)
    touch(project.root / "data/a.bin")
    assert project.git("status", "--porcelain").stdout == ""
    touch(project.root / "data/a.bin", 10)
    project.git("add", "-A")
    assert project.git("diff", "--cached", "--name-only").stdout == ""
    assert project.blob(":data/a.bin") == ref_bytes(data)
    assert cache_objects(project.root) == []
    assert project.cvfs("status", "--json").returncode == 0


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["in-memory", "compared"])
def test_the_same_bytes_written_again_are_not_copied_either(project: Project, size: int) -> None:
    data = committed(project, size, 2)
    (project.root / "data/a.bin").unlink()
    project.write("data/a.bin", data)  # a pipeline that regenerates its output: a new inode
    project.git("add", "-A")
    assert project.git("status", "--porcelain").stdout == ""
    assert cache_objects(project.root) == []


def test_with_cache_keep_a_touched_file_gets_its_cache_copy_back(project: Project) -> None:
    data = committed(project, LARGE, 3)
    project.git("config", "cvfs.cache.keep", "true")
    touch(project.root / "data/a.bin")
    project.git("add", "-A")
    assert cached_bytes(project.root, data) == data


@pytest.mark.parametrize(
    ("size", "changed"),
    [(SMALL, slice(None)), (LARGE, slice(None)), (LARGE, slice(0, 100)), (LARGE, slice(LARGE // 2, LARGE // 2 + 100))],
    ids=["in-memory", "sampled", "header-sampled", "compared-then-copied"],
)
def test_new_bytes_of_the_same_size_are_stored(project: Project, size: int, changed: slice) -> None:
    """A model's next checkpoint: same size, other bytes. A few pages (the first among them: a
    header) tell them apart from the archive's copy at once; new bytes where no page is looked
    at (here a few in the middle) are compared with the file in full, found new, then copied
    from it into the cache."""
    old = committed(project, size, 4)
    new = bytearray(old)
    new[changed] = rand(len(new[changed]), 5)
    assert new != old
    project.write("data/a.bin", bytes(new))
    project.git("add", "-A")
    assert project.blob(":data/a.bin") == ref_bytes(bytes(new))
    assert cached_bytes(project.root, bytes(new)) == new
    project.git("commit", "-q", "-m", "new")
    assert project.archive_path(hashlib.sha256(new).hexdigest()).read_bytes() == new


@pytest.mark.parametrize(
    ("where", "apart"),
    [(0, True), (LARGE // 3, True), (LARGE - 10, True), (LARGE // 2, False), (None, False)],
    ids=["header", "a-third-in", "footer", "unsampled-middle", "unchanged"],
)
def test_a_few_pages_tell_new_bytes_of_the_same_size_apart(
    project: Project, monkeypatch: pytest.MonkeyPatch, where: int | None, apart: bool
) -> None:
    """The pages sampled against the archive's copy: the first (a format's header), a third
    and two thirds in, and the last. A change elsewhere is found by the full comparison."""
    old = committed(project, LARGE, 15)
    new = bytearray(old)
    if where is not None:
        new[where : where + 10] = rand(10, 16)
    project.write("data/a.bin", bytes(new))
    monkeypatch.chdir(project.root)
    ws = Workspace.discover()
    ref = Ref(hashlib.sha256(old).hexdigest(), LARGE)
    assert sampled_apart(ws, "data/a.bin", ref, local_archives(ws)) is apart


def test_a_file_committed_before_it_was_tracked_is_stored_when_renormalized(project: Project) -> None:
    """Its index entry is the raw blob, not a ref: the bytes cannot be that entry's ref, and
    they are spooled at once."""
    data = rand(LARGE, 14)
    project.write("raw/a.bin", data)
    project.git("config", "-f", ".cvfs/config", "scope.minSize", "10MB")  # raw/ is not tracked: big raw files allowed
    project.commit_all()
    project.cvfs("track", "raw/**")
    project.git("config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    project.git("add", "--renormalize", "raw/a.bin")
    assert project.blob(":raw/a.bin") == ref_bytes(data)
    assert cached_bytes(project.root, data) == data


@pytest.mark.parametrize("same_prefix", [0, LARGE // 2 + 7], ids=["from-the-start", "half-way"])
def test_bytes_git_takes_from_elsewhere_are_stored_whatever_the_work_tree_holds(
    project: Project, tmp_path: Path, same_prefix: int
) -> None:
    """`git hash-object --path` cleans bytes that are not the work-tree file's, which here is
    the staged ref's: what the stream shares with the file is copied from it, checked against
    the hash of what git sent, and the rest is spooled as it comes."""
    old = committed(project, LARGE, 6)
    other = old[:same_prefix] + rand(LARGE - same_prefix, 7)
    (tmp_path / "other.bin").write_bytes(other)
    blob = project.git("hash-object", "-w", "--path", "data/a.bin", str(tmp_path / "other.bin")).stdout.strip()
    assert project.blob(blob) == ref_bytes(other)
    assert cached_bytes(project.root, other) == other
    assert project.git("status", "--porcelain").stdout == ""


def test_a_split_index_is_read_through_its_shared_index_and_every_answer_stays_right(project: Project) -> None:
    """After --split-index every entry sits in the shared index: the split part alone knew
    none, and a touched file was stored in the cache again as if its bytes were new."""
    data = committed(project, LARGE, 8)
    project.git("update-index", "--split-index")
    touch(project.root / "data/a.bin")
    project.git("add", "-A")
    assert cache_objects(project.root) == []
    assert project.git("status", "--porcelain").stdout == ""
    new = rand(LARGE, 9)
    project.write("data/a.bin", new)
    project.git("add", "-A")
    assert project.blob(":data/a.bin") == ref_bytes(new)
    assert cached_bytes(project.root, new) == new
    assert data != new


def test_index_version_4_is_read(project: Project) -> None:
    committed(project, LARGE, 10)
    project.git("update-index", "--index-version", "4")
    touch(project.root / "data/a.bin")
    project.git("add", "-A")
    assert cache_objects(project.root) == []


def test_a_file_that_changes_while_it_is_compared_fails_the_clean(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git sent bytes that matched the work-tree file as they came, yet are not the staged
    ref; by the time they are copied into the cache the file holds others. No ref is given
    for bytes that were not stored: the clean fails, and nothing is left in the cache."""
    old = committed(project, LARGE, 11)
    sent = rand(LARGE, 12)
    path = project.write("data/a.bin", sent)
    monkeypatch.chdir(project.root)
    ws = Workspace.discover()
    staged = Staged(git_blob_id(ref_bytes(old)), LARGE)

    def git_sends() -> Iterator[bytes]:
        for i in range(0, LARGE, 65516):
            yield sent[i : i + 65516]
        path.write_bytes(rand(LARGE, 13))  # rewritten once git has read it

    with pytest.raises(CvfsError, match="changed while git-cvfs was reading it"):
        list(clean(ws, "data/a.bin", git_sends(), staged=lambda _path: staged))
    assert cache_objects(project.root) == []
    assert not any((project.root / ".git/cvfs/tmp").iterdir())
