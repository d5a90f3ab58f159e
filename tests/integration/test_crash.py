"""SIGKILL at named points (GIT_CVFS_CRASH_AT): old state or new, never a partial file; re-running finishes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import Project, git, rand, ref_bytes


def crash(env_point: str) -> dict[str, str]:
    return {"GIT_CVFS_CRASH_AT": env_point}


def healthy(root: Path) -> None:
    """Every cache object verifies, every ref and shard parses, and nothing stray is in the work tree."""
    report = json.loads(git(root, "cvfs", "fsck", "--json").stdout)
    assert report["ok"], report
    stray = [p for p in root.rglob("*.tmp") if ".git" not in p.parts]
    assert stray == [], stray


@pytest.mark.parametrize("point", ["cache:mid-spool", "cache:before-adopt"])
def test_git_add_killed_while_cleaning(project: Project, point: str) -> None:
    data = rand(300_000)
    project.write("data/a.bin", data)
    died = project.git("add", "data/a.bin", env=crash(point), check=False)
    staged = project.git("diff", "--cached", "--name-only").stdout
    if point == "cache:mid-spool":  # before the answer: git sees the filter die and stages nothing
        assert died.returncode != 0 and staged == ""
    else:
        # The cache files objects in the background, after git has its ref: git may stage
        # it. Then, as with the lean cache, the work tree holds the only local copy.
        assert staged in ("", "data/a.bin\n")
        if staged:
            assert project.blob(":data/a.bin") == ref_bytes(data)
    assert (project.root / "data/a.bin").read_bytes() == data
    healthy(project.root)
    project.commit_all()  # re-running finishes the job; the commit archives from the work tree
    assert project.blob("HEAD:data/a.bin") == ref_bytes(data)
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    healthy(project.root)


@pytest.mark.parametrize(
    ("point", "keep"),
    [
        # The lean cache (the default) copies from the directory archive straight into the tree.
        ("worktree:before-verify", False),
        ("worktree:before-rename", False),
        # cache.keep = true: downloaded into the cache first, then copied.
        ("cache:before-adopt", True),
        ("worktree:before-rename", True),
    ],
)
def test_ensure_killed_midway(project: Project, tmp_path: Path, point: str, keep: bool) -> None:
    data = rand(300_000, 1)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "config", "cvfs.cache.keep", "true" if keep else "false")
    died = git(lazy, "cvfs", "ensure", "data", env=crash(point), check=False)
    assert died.returncode != 0
    assert (lazy / "data/a.bin").read_bytes() == ref_bytes(data)  # the old state
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/a.bin").read_bytes() == data  # the new state
    healthy(lazy)
    assert git(lazy, "status", "--porcelain").stdout == ""


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_ensure_from_a_cloud_archive_killed_before_the_rename(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """The lean cache: the download lands in a temporary file beside the target, never in the cache."""
    from tests.conftest import new_project

    archive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, archive.config())
    data = rand(300_000, 10)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    died = git(lazy, "cvfs", "ensure", "data", env=crash("worktree:before-rename"), check=False)
    assert died.returncode != 0
    assert (lazy / "data/a.bin").read_bytes() == ref_bytes(data)  # the old state
    assert len(list((lazy / "data").glob(".a.bin.cvfs-*.tmp"))) == 1  # the verified download, not renamed
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/a.bin").read_bytes() == data  # the new state
    healthy(lazy)  # the dead process's temporary file is gone
    assert not list((lazy / ".git/cvfs/objects").rglob(hashlib.sha256(data).hexdigest()))
    assert git(lazy, "status", "--porcelain").stdout == ""


def test_index_update_killed_leaves_git_index_intact(project: Project, tmp_path: Path) -> None:
    data = rand(100_000, 2)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    index_before = (lazy / ".git/index").read_bytes()
    git(lazy, "cvfs", "ensure", "data", env=crash("index:before-rename"), check=False)
    assert (lazy / ".git/index").read_bytes() == index_before  # the rename never happened
    assert (lazy / "data/a.bin").read_bytes() == data
    # Like git killed mid-write, the lock stays; git names it, and removing it lets the next run finish.
    (lazy / ".git/index.lock").unlink()
    git(lazy, "cvfs", "ensure", "data")
    assert git(lazy, "status", "--porcelain").stdout == ""
    healthy(lazy)


def test_pre_commit_killed_before_rows_then_commit_again(project: Project) -> None:
    project.write("data/a.bin", rand(50_000, 3))
    project.write("data/sub/b.bin", rand(50_000, 4))
    project.git("add", "-A")
    for point in ("pre-commit:before-rows", "inventory:after-shard"):
        died = project.git("commit", "-m", "x", env=crash(point), check=False)
        assert died.returncode != 0
        assert project.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode != 0  # no commit made
    project.git("add", "-A")
    project.git("commit", "-q", "-m", "x")
    assert json.loads(project.cvfs("reconcile", "--json").stdout)["ok"]
    healthy(project.root)


def test_push_killed_after_upload_then_push_again(project: Project) -> None:
    data = rand(50_000, 5)
    project.write("data/a.bin", data)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "not archived yet")
    died = project.cvfs("push", env=crash("push:after-upload"), check=False)
    assert died.returncode != 0
    out = json.loads(project.cvfs("push", "--json").stdout)
    assert out["ok"]
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_offload_killed_before_replacing_keeps_the_file(project: Project) -> None:
    data = rand(50_000, 6)
    project.write("data/a.bin", data)
    project.commit_all()
    died = project.cvfs("offload", "data/a.bin", env=crash("worktree:before-rename"), check=False)
    assert died.returncode != 0
    assert (project.root / "data/a.bin").read_bytes() == data
    project.cvfs("offload", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == ref_bytes(data)
    healthy(project.root)
    assert project.git("status", "--porcelain").stdout == ""


def test_filter_process_killed_mid_smudge(project: Project) -> None:
    data = rand(9 << 20, 7)  # streamed in chunks (above 8 MiB), so the kill lands after the first one
    project.write("data/a.bin", data)
    project.commit_all()
    (project.root / "data/a.bin").unlink()
    died = project.git("checkout", "--", "data/a.bin", env=crash("filter:mid-content"), check=False)
    assert died.returncode != 0
    assert not (project.root / "data/a.bin").exists()  # git writes nothing it did not receive whole
    healthy(project.root)
    project.git("checkout", "--", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == data
    assert project.git("status", "--porcelain").stdout == ""


@pytest.mark.parametrize(
    ("kind", "point", "size"), [("s3", "s3:mid-multipart", 65 << 20), ("azure", "azure:mid-blocks", 9 << 20)]
)
def test_push_killed_inside_a_multipart_upload(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, point: str, size: int
) -> None:
    from tests.conftest import new_project
    from tests.integration.test_cloud import key_of, read_object

    archive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, archive.config())
    data = rand(size, 8)
    project.write("data/big.bin", data)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "not archived yet")
    died = project.cvfs("push", env=crash(point), check=False)
    assert died.returncode != 0
    assert read_object(archive, key_of(data)) is None  # parts or blocks uploaded, no object
    assert json.loads(project.cvfs("push", "--json").stdout)["ok"]
    assert read_object(archive, key_of(data)) == data
    healthy(project.root)


def test_a_cache_write_failing_in_the_background_fails_the_add_and_stages_nothing(project: Project) -> None:
    # fsync and rename run after git has a file's ref; a failure there must still stop
    # the `git add` (at the next file), not leave refs staged with nothing filed.
    files = {f"data/f{i:02d}.bin": rand(5000, seed=i) for i in range(40)}
    for rel, data in files.items():
        project.write(rel, data)
    failed = project.git("add", "data", env={"GIT_CVFS_FAIL_AT": "cache:fsync"}, check=False)
    assert failed.returncode != 0
    assert "could not store data/f" in failed.stderr and "Input/output error" in failed.stderr
    assert project.git("diff", "--cached", "--name-only").stdout == ""
    assert {rel: (project.root / rel).read_bytes() for rel in files} == files
    assert list((project.root / ".git/cvfs/tmp").iterdir()) == []  # no spool left behind
    healthy(project.root)
    project.commit_all()
    for data in files.values():
        assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data


def test_a_failed_flush_of_the_directory_archive_puts_no_object_in_place(project: Project) -> None:
    # Small objects go to a directory archive in batches, with one syncfs before any is
    # given its name. If that flush fails, none may appear under its key, and the cache
    # (the lean cache would drop archived copies) must keep every one.
    files = {f"data/f{i:02d}.bin": rand(5000, seed=200 + i) for i in range(30)}
    for rel, data in files.items():
        project.write(rel, data)
    project.git("add", "data")
    committed = project.git("commit", "-q", "-m", "data", env={"GIT_CVFS_FAIL_AT": "archive:flush"})
    assert "committing without archiving 30 object(s)" in committed.stderr
    assert "cannot flush" in committed.stderr and "injected at archive:flush" in committed.stderr
    oids = [hashlib.sha256(data).hexdigest() for data in files.values()]
    assert [oid for oid in oids if project.archive_path(oid).exists()] == []
    assert list((project.archive / "tmp").iterdir()) == []  # no staged copy left behind
    cache = project.root / ".git/cvfs/objects"
    assert [(cache / oid[:2] / oid[2:4] / oid).read_bytes() for oid in oids] == list(files.values())
    healthy(project.root)
    project.cvfs("push")  # the next try archives them all
    assert [project.archive_path(oid).read_bytes() for oid in oids] == list(files.values())
    assert list((project.archive / "tmp").iterdir()) == []


def test_a_cache_write_failing_after_git_finished_is_reported_and_the_commit_recovers(project: Project) -> None:
    # The last file's failure can only be told after git has written its index.
    data = rand(5000, seed=99)
    project.write("data/one.bin", data)
    added = project.git("add", "data/one.bin", env={"GIT_CVFS_FAIL_AT": "cache:fsync"})
    lines = added.stderr.splitlines()
    assert (
        lines[0]
        == "error: git-cvfs: could not store data/one.bin in the cache: Input/output error (injected at cache:fsync)"
    )
    assert lines[1].startswith("hint: the bytes are only in the work tree for now")
    assert project.blob(":data/one.bin") == ref_bytes(data)
    assert not project.archive_path(hashlib.sha256(data).hexdigest()).exists()
    project.git("commit", "-q", "-m", "one")  # archives it, read back from the work tree and verified
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    healthy(project.root)


def test_a_full_disk_while_a_large_file_is_spooled_fails_that_file_and_stages_nothing(project: Project) -> None:
    # Past 8 MiB a spool's bytes are written on a thread of their own: its error must still
    # fail the file before git is given a ref, with the fix, and leave nothing behind. The
    # writer starts once 8 MiB are in; the rest, under its 1 MiB batch, is handed over only
    # as the file ends: without a wait for it before the ref goes to git, the error would
    # come only after git had staged the ref.
    data = rand((9 << 20) + 4096, seed=7)
    project.write("data/big.bin", data)
    failed = project.git("add", "data", env={"GIT_CVFS_FAIL_AT": "cache:write:ENOSPC"}, check=False)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0] == ("error: git-cvfs: clean data/big.bin: No space left on device (injected at cache:write)"), (
        failed.stderr
    )
    assert errors[1] == "hint: free some disk space, then run the command again", failed.stderr
    assert project.git("diff", "--cached", "--name-only").stdout == ""
    assert (project.root / "data/big.bin").read_bytes() == data
    assert list((project.root / ".git/cvfs/tmp").iterdir()) == []
    healthy(project.root)
    project.commit_all()
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
