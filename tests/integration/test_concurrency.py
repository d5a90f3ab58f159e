"""Concurrent runs across processes: no corruption, no lost rows, no deadlock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from git_cvfs.core.ensure import MISSING_REASON
from tests.conftest import CVFS, Project, git, paused, rand


def start(cwd: Path, *cmd: str) -> subprocess.Popen[str]:
    return subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


def lazy_clone_of(project: Project, tmp_path: Path, files: dict[str, bytes]) -> Path:
    """These files committed and pushed, and a clone of them that holds their refs."""
    project.publish(files)
    return project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})


def test_two_ensures_of_the_same_tree(project: Project, tmp_path: Path) -> None:
    files = {f"data/f{i:02d}.bin": rand(100_000, i) for i in range(30)}
    lazy = lazy_clone_of(project, tmp_path, files)
    a, b = start(lazy, CVFS, "ensure", "data"), start(lazy, CVFS, "ensure", "data")
    results = [finish(a), finish(b)]
    assert [rc for rc, _ in results] == [0, 0], results
    for name, data in files.items():
        assert (lazy / name).read_bytes() == data
    assert git(lazy, "status", "--porcelain").stdout == ""
    assert json.loads(git(lazy, "cvfs", "fsck", "--json").stdout)["ok"]
    assert not [p for p in lazy.rglob("*.tmp") if ".git" not in p.parts]


def test_two_worktrees_sharing_one_cache_add_the_same_content_at_once(project: Project, tmp_path: Path) -> None:
    project.write("README", b"x\n")
    project.commit_all()
    other = tmp_path / "other"
    project.git("worktree", "add", "-q", str(other))
    data = rand(2_000_000, 7)
    for root in (project.root, other):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / "same.bin").write_bytes(data)
    a, b = start(project.root, "git", "add", "data"), start(other, "git", "add", "data")
    assert [finish(a)[0], finish(b)[0]] == [0, 0]
    h = hashlib.sha256(data).hexdigest()
    common = project.root / ".git/cvfs/objects" / h[:2] / h[2:4] / h
    assert common.read_bytes() == data  # one cache, one verified object
    assert not (other / ".git").is_dir()  # a linked worktree: .git is a file, the cache is shared
    assert os.listdir(project.root / ".git/cvfs/tmp") == []


def test_parallel_commits_from_two_worktrees_lose_no_rows(project: Project, tmp_path: Path) -> None:
    project.write("README", b"x\n")
    project.commit_all()
    other = tmp_path / "other"
    project.git("worktree", "add", "-q", "-b", "side", str(other))
    for root, tag in ((project.root, "main"), (other, "side")):
        for i in range(10):
            p = root / "data" / f"{tag}{i}.bin"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(rand(20_000, hash((tag, i)) % 1000))
        git(root, "add", "-A")
    a = start(project.root, "git", "commit", "-q", "-m", "main data")
    b = start(other, "git", "commit", "-q", "-m", "side data")
    assert [finish(a)[0], finish(b)[0]] == [0, 0]
    for root, tag in ((project.root, "main"), (other, "side")):
        rows = [json.loads(line) for line in git(root, "show", "HEAD:.cvfs/index/data.jsonl").stdout.splitlines()]
        assert sorted(r["path"] for r in rows) == sorted(f"data/{tag}{i}.bin" for i in range(10))
        assert json.loads(git(root, "cvfs", "reconcile", "--json").stdout)["ok"]
    project.git("merge", "-q", "--no-edit", "side")
    merged = project.git("show", "HEAD:.cvfs/index/data.jsonl").stdout.splitlines()
    assert len(merged) == 20


def test_ensure_racing_git_checkout(project: Project, tmp_path: Path) -> None:
    """Whichever wins each race, every file ends as its branch's bytes or its branch's ref."""
    base = {f"data/f{i:02d}.bin": rand(60_000, i) for i in range(24)}
    for name, data in base.items():
        project.write(name, data)
    project.commit_all()
    project.git("checkout", "-q", "-b", "other")
    for i in range(0, 24, 2):  # half the files differ between the branches
        project.write(f"data/f{i:02d}.bin", rand(60_000, 100 + i))
    project.commit_all("other")
    project.git("push", "-q", "origin", "main", "other")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "branch", "-q", "other", "origin/other")
    # First, one race that certainly happens: ensure has read the refs and is about to write
    # when a checkout of the other branch replaces half of them. Those it must leave alone.
    marker = tmp_path / "at-write"
    ensure = paused(lazy, "ensure:before-write", marker, "ensure", "data")
    git(lazy, "checkout", "-q", "other", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    marker.unlink()
    _, err = ensure.communicate(timeout=120)
    changed = [f"data/f{i:02d}.bin" for i in range(0, 24, 2)]
    assert ensure.returncode == 1 and all(f"{name}: " in err and "changed while" in err for name in changed), err
    for name in changed:  # the other branch's refs, as the checkout wrote them
        assert (lazy / name).read_bytes() == git(lazy, "show", f"other:{name}").stdout.encode()
    git(lazy, "cvfs", "ensure", "data")
    git(lazy, "checkout", "-q", "main")
    outcomes = []
    for rnd in range(6):
        target = "other" if rnd % 2 == 0 else "main"
        if rnd:
            git(lazy, "cvfs", "offload", "data")  # refs again, so ensure has work to race with
        # Half the rounds the checkout writes refs (skip-smudge), half it writes the bytes.
        env = {**os.environ, "GIT_CVFS_SKIP_SMUDGE": "1"} if rnd % 3 == 0 else None
        checkout = subprocess.Popen(
            ["git", "checkout", "-q", target],
            cwd=lazy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ensure = start(lazy, CVFS, "ensure", "data")
        (crc, cout), (erc, eout) = finish(checkout), finish(ensure)
        outcomes.append((crc, erc))
        assert "Traceback" not in cout + eout
        if erc:  # the checkout changed files under it, or had removed one it had not yet written: named
            errors = [line for line in eout.splitlines() if line.startswith("error:")]
            underfoot = [line for line in errors if "changed while" in line or "disappeared while" in line]
            assert errors and all(line in underfoot or line.endswith(MISSING_REASON) for line in errors), eout
            assert not underfoot or "hint: files changed while ensure ran" in eout, eout
        head = git(lazy, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        for name in base:
            ref = git(lazy, "show", f"{head}:{name}").stdout.encode()
            on_disk = (lazy / name).read_bytes()
            oid = json.loads(ref)["oid"].removeprefix("sha256:")
            assert on_disk == ref or hashlib.sha256(on_disk).hexdigest() == oid, (rnd, head, name)
        git(lazy, "cvfs", "ensure", "data")  # and then one more run finishes the job
        assert git(lazy, "status", "--porcelain").stdout == "", (rnd, outcomes)
    assert json.loads(git(lazy, "cvfs", "fsck", "--json").stdout)["ok"]
    assert not [p for p in lazy.rglob("*.tmp") if ".git" not in p.parts]


def test_a_file_a_checkout_is_rewriting_is_not_called_deleted(project: Project, tmp_path: Path) -> None:
    """git checkout unlinks a file before it writes the new one (and a delayed smudge keeps it
    away a while): ensure that finds it gone then must say it changed, not that it was deleted
    and wants restoring, and must not pass. A file gone for good is still called deleted.
    (The race test above met this by chance.)"""
    lazy = lazy_clone_of(project, tmp_path, {f"data/f{i}.bin": rand(50_000, i) for i in range(3)})
    (lazy / "data/f0.bin").unlink()  # mid-checkout: the old file gone, the new one not yet there
    (lazy / "data/f2.bin").unlink()  # and one the user deleted
    marker = tmp_path / "at-write"
    ensure = paused(lazy, "ensure:before-write", marker, "ensure", "data")
    git(lazy, "checkout", "--", "data/f0.bin", env={"GIT_CVFS_SKIP_SMUDGE": "1"})  # written back
    marker.unlink()
    _, err = ensure.communicate(timeout=120)
    assert ensure.returncode == 1, err
    assert "data/f0.bin: changed while ensure ran" in err, err
    assert "hint: `git checkout -- :/data/f0.bin`" not in err, err
    assert "data/f2.bin: not in the work tree" in err, err
    assert "hint: `git checkout -- :/data/f2.bin` restores deleted files" in err, err
    assert "hint: files changed while ensure ran" in err, err  # each its own hint
    assert "Traceback" not in err


def other_writer_at(
    point: str, lazy: Path, tmp_path: Path, *, recreate: bool, in_place: bytes | None = None
) -> subprocess.Popen[str]:
    """`ensure data/a.bin` paused at this point, while another writer (as git checkout does)
    unlinks the file and, with recreate, creates it anew with its own bytes; then let go.
    in_place: what the file must hold at the pause (ensure's bytes, once it put them there)."""
    marker = tmp_path / "paused"
    ensure = paused(lazy, point, marker, "ensure", "data/a.bin")
    target = lazy / "data/a.bin"
    if in_place is not None:
        assert target.read_bytes() == in_place
    target.unlink()
    if recreate:
        target.write_bytes(b"what the other writer put there\n")
    marker.unlink()
    return ensure


@pytest.mark.parametrize("recreate", [True, False], ids=["replaced", "removed"])
def test_a_file_replaced_between_ensures_check_and_its_rename_is_left_alone(
    project: Project, tmp_path: Path, recreate: bool
) -> None:
    """The window git checkout can hit: ensure has checked that the file still holds the ref,
    and git then unlinks it and creates it anew before ensure's rename. ensure exchanges the two
    names in one step and looks at what it took out: not the file it checked, so it puts it
    back. (With a check, then a plain rename, git's new file was overwritten.)"""
    lazy = lazy_clone_of(project, tmp_path, {"data/a.bin": rand(60_000, 7)})
    ensure = other_writer_at("worktree:before-replace", lazy, tmp_path, recreate=recreate)
    target = lazy / "data/a.bin"
    _, err = ensure.communicate(timeout=60)
    said = "changed while it was being materialized" if recreate else "disappeared while it was being written"
    assert ensure.returncode == 1 and f"data/a.bin {said}" in err and "Traceback" not in err, err
    if recreate:
        assert target.read_bytes() == b"what the other writer put there\n"
        assert [p.name for p in (lazy / "data").iterdir()] == ["a.bin"]  # no temporary file left
    else:
        assert list((lazy / "data").iterdir()) == []  # nothing put where the file was removed


@pytest.mark.parametrize("recreate", [True, False], ids=["replaced", "removed"])
def test_a_file_replaced_right_after_ensure_put_it_in_place_is_named(
    project: Project, tmp_path: Path, recreate: bool
) -> None:
    """git checkout can unlink the file ensure has just put in place, and create it anew: ensure
    must not record that file's stat in the index as its own, nor report a bare "No such file"
    (CI saw `cannot write: No such file or directory` there). It names the file as changed."""
    data = rand(60_000, 8)
    lazy = lazy_clone_of(project, tmp_path, {"data/a.bin": data})
    ensure = other_writer_at("worktree:placed", lazy, tmp_path, recreate=recreate, in_place=data)
    target = lazy / "data/a.bin"
    _, err = ensure.communicate(timeout=60)
    said = "changed while it was being materialized" if recreate else "disappeared while it was being written"
    assert ensure.returncode == 1 and f"data/a.bin {said}" in err and "Traceback" not in err, err
    assert "No such file" not in err, err
    if recreate:
        assert target.read_bytes() == b"what the other writer put there\n"
        assert "data/a.bin" in git(lazy, "status", "--porcelain").stdout  # not recorded as clean
    else:
        assert not target.exists()


@pytest.mark.parametrize("recreate", [True, False], ids=["then-created", "then-removed"])
def test_a_file_changed_twice_around_ensures_exchange_is_left_as_the_other_writer_left_it(
    project: Project, tmp_path: Path, recreate: bool
) -> None:
    """The narrowest window: another writer replaced the file ensure checked, ensure exchanged
    it with its own and saw it must put it back, and meanwhile the other writer unlinked the
    name again (and perhaps created it anew). Putting back must not fail with "No such file":
    the taken file goes back where nothing is, or is dropped where the other writer's new file is."""
    data = rand(60_000, 9)
    lazy = lazy_clone_of(project, tmp_path, {"data/a.bin": data})
    marker = tmp_path / "exchanged"
    ensure = paused(lazy, "worktree:exchanged", marker, "ensure", "data/a.bin")
    target = lazy / "data/a.bin"
    (taken,) = [p for p in (lazy / "data").iterdir() if p.name.endswith(".tmp")]
    taken.write_bytes(b"the other writer's first file\n")  # not what ensure checked
    target.unlink()  # ensure's new file, removed by the other writer
    if recreate:
        target.write_bytes(b"the other writer's second file\n")
    marker.unlink()
    _, err = ensure.communicate(timeout=60)
    assert ensure.returncode == 1 and "data/a.bin changed while it was being materialized" in err, err
    assert "No such file" not in err and "Traceback" not in err, err
    want = b"the other writer's second file\n" if recreate else b"the other writer's first file\n"
    assert target.read_bytes() == want
    assert [p.name for p in (lazy / "data").iterdir()] == ["a.bin"]  # no temporary file left


def test_a_directory_a_checkout_removes_under_ensure_is_named_not_a_write_error(
    project: Project, tmp_path: Path
) -> None:
    """git checkout of a branch without data/ removes the directory while ensure is about to
    write into it: each file is named as gone, not as `cannot write: No such file or directory`
    (a disk error's words, with a hint about the archive), and nothing is created again."""
    lazy = lazy_clone_of(project, tmp_path, {f"data/f{i}.bin": rand(60_000, 20 + i) for i in range(3)})
    marker = tmp_path / "at-write"
    ensure = paused(lazy, "ensure:before-write", marker, "ensure", "data")
    for i in range(3):
        (lazy / f"data/f{i}.bin").unlink()
    (lazy / "data").rmdir()
    marker.unlink()
    _, err = ensure.communicate(timeout=60)
    assert ensure.returncode == 1 and "Traceback" not in err, err
    for i in range(3):
        assert f"data/f{i}.bin disappeared while it was being written" in err, err
    assert "No such file" not in err, err
    assert not (lazy / "data").exists()
