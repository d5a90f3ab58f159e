"""cache.keep = false (the default): the data is on local disk once, not twice."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import Project, git, rand


def cached(root: Path, data: bytes) -> bool:
    h = hashlib.sha256(data).hexdigest()
    return (root / ".git/cvfs/objects" / h[:2] / h[2:4] / h).exists()


def test_commit_drops_the_cache_copy_once_archived(project: Project) -> None:
    data = rand(50_000)
    project.write("data/a.bin", data)
    project.git("add", "-A")
    assert cached(project.root, data)  # until it is archived, the cache holds it
    project.git("commit", "-q", "-m", "a")
    assert not cached(project.root, data)
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    assert (project.root / "data/a.bin").read_bytes() == data
    assert project.git("status", "--porcelain").stdout == ""


def test_cache_keep_true_keeps_every_object(project: Project) -> None:
    project.git("config", "cvfs.cache.keep", "true")
    data = rand(50_000)
    project.write("data/a.bin", data)
    project.commit_all()
    assert cached(project.root, data)


def test_a_file_changed_after_git_add_keeps_its_cache_copy(project: Project) -> None:
    v1 = rand(50_000, 1)
    project.write("data/a.bin", v1)
    project.git("add", "-A")
    project.write("data/a.bin", rand(50_000, 2))  # same size, other bytes, not re-added
    project.git("commit", "-q", "-m", "v1")
    assert cached(project.root, v1)


def test_ensure_drops_the_cache_copy_and_switching_back_downloads_again(project: Project, tmp_path: Path) -> None:
    data = rand(50_000, 3)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "cvfs", "ensure", "data/a.bin")
    assert (lazy / "data/a.bin").read_bytes() == data and not cached(lazy, data)
    git(lazy, "checkout", "-q", "-b", "empty")
    git(lazy, "rm", "-q", "data/a.bin")
    git(lazy, "commit", "-q", "-m", "rm")
    git(lazy, "checkout", "-q", "main")
    assert (lazy / "data/a.bin").read_bytes() == data


def test_ensure_and_the_checkout_hook_copy_from_the_directory_archive_straight_into_the_tree(
    project: Project, tmp_path: Path
) -> None:
    """The lean cache would drop a downloaded copy as soon as the file is written, so with a
    directory archive as the primary the bytes never go through the cache: here the cache
    cannot take a file at all, and ensure and the post-checkout hook still write both."""
    project.git("config", "-f", ".cvfs/config", "smudge.streamMax", "100KB")  # big.bin: the hook's
    small, big = rand(50_000, 5), rand(300_000, 6)
    project.write("data/small.bin", small)
    project.write("data/big.bin", big)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    (lazy / ".git/cvfs").mkdir(exist_ok=True)
    (lazy / ".git/cvfs/tmp").write_bytes(b"")  # a file where the cache's tmp directory goes
    git(lazy, "cvfs", "ensure", "data/small.bin")
    assert (lazy / "data/small.bin").read_bytes() == small
    (lazy / "data/big.bin").unlink()
    git(lazy, "checkout", "--", "data/big.bin")  # deferred by the filter, written by the hook
    assert (lazy / "data/big.bin").read_bytes() == big
    assert git(lazy, "status", "--porcelain").stdout == ""
    assert not cached(lazy, small) and not cached(lazy, big)
