"""A disk that is full for real (a small tmpfs holding the repository, its cache and archive).

git cleans files it has cleaned before: an entry written in the same second as the index
(racily clean), a file touched or copied back, `git add -A` over a tree. Each time the filter
is given the bytes again, and on a full disk it cannot spool them: `git status` and `git
commit` must not fail for bytes kept safe long ago, and bytes kept nowhere must not get a ref.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, new_project, rand, ref_bytes, tmpfs

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "128m") as mount:
        yield mount


def fill(disk: Path, leave: int) -> None:
    """Take the disk's free space down to about `leave` bytes (the filler file grows or shrinks)."""
    filler = disk / "filler"
    have = filler.stat().st_size if filler.exists() else 0
    st = os.statvfs(disk)
    target = max(0, have + st.f_bavail * st.f_frsize - leave)
    with open(filler, "ab") as f:
        f.truncate(min(have, target))
        while f.tell() < target:
            f.write(b"\xff" * min(MiB, target - f.tell()))


def touch(project: Project, *names: str) -> None:
    """A new mtime (in the past: a future one would keep the entry racy) and ctime: git must
    read these files through the filter again."""
    for name in names:
        path = project.root / "data" / name
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))


def test_a_full_disk_still_lets_git_reclean_files_whose_bytes_are_kept(small_disk: Path) -> None:
    project = new_project(small_disk, {})
    archived, small, staged = rand(20 * MiB, 1), rand(2 * MiB, 2), rand(12 * MiB, 3)
    project.write("data/archived.bin", archived)  # past 8 MiB: spooled on a writer thread
    project.write("data/small.bin", small)  # written by the filter's own thread
    project.commit_all()  # archived, and (lean cache) not kept in the cache
    hex_digest = hashlib.sha256(archived).hexdigest()
    assert not (project.root / ".git/cvfs/objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest).exists()
    project.write("data/staged.bin", staged)
    project.git("add", "data/staged.bin")  # in the cache only
    project.write("data/new.bin", rand(3 * MiB, 4))  # stored nowhere yet
    names = ("archived.bin", "small.bin", "staged.bin")

    # Room for the first 8 MiB of a spool, not for its writer's: then room for nothing.
    for leave in (10 * MiB, 256 << 10):
        fill(small_disk, leave)
        touch(project, *names)
        status = project.git("status", "--porcelain", "--", *(f"data/{n}" for n in names), check=False)
        assert (status.returncode, status.stdout) == (0, "A  data/staged.bin\n"), status.stderr
        touch(project, *names)
        project.git("add", "--", *(f"data/{n}" for n in names))
        assert project.git("diff", "--cached", "--name-only").stdout == "data/staged.bin\n"
        assert project.blob(":data/archived.bin") == ref_bytes(archived)
        assert project.blob(":data/staged.bin") == ref_bytes(staged)

    # Bytes kept nowhere: the disk's error, nothing staged, no spool left behind.
    failed = project.git("add", "data/new.bin", check=False)
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors == [
        "error: git-cvfs: clean data/new.bin: No space left on device",
        "hint: free some disk space, then run the command again",
    ], failed.stderr
    assert project.git("diff", "--cached", "--name-only").stdout == "data/staged.bin\n"
    assert list((project.root / ".git/cvfs/tmp").iterdir()) == []

    (small_disk / "filler").unlink()
    project.commit_all()
    for data in (archived, small, staged, (project.root / "data/new.bin").read_bytes()):
        assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    assert project.git("status", "--porcelain").stdout == ""


def test_ensure_on_a_full_disk_names_the_disk_and_leaves_refs_and_no_temporary_files(small_disk: Path) -> None:
    project = new_project(small_disk, {})
    shared, own = rand(6 * MiB, 5), rand(12 * MiB, 6)
    project.write("data/a.bin", shared)  # a and b hold the same bytes: fetched once, into the cache
    project.write("data/b.bin", shared)
    project.write("data/c.bin", own)  # straight from the archive into the work tree
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(small_disk / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    cloned = time.time()
    fill(small_disk, 0)
    # Once the shard has settled, `git cvfs status` notes it as checked (.git/cvfs/checked-shards-*):
    # a note it cannot write on a full disk must cost only time, and leave nothing behind.
    time.sleep(max(0.0, cloned + 2.5 - time.time()))
    out = subprocess.run(["git", "cvfs", "status"], cwd=lazy, capture_output=True, text=True)
    assert out.returncode == 0 and "ref                3" in out.stdout, out.stdout + out.stderr
    fill(small_disk, 256 << 10)

    out = subprocess.run(["git", "cvfs", "ensure", "data"], cwd=lazy, capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.splitlines()
    assert [line for line in lines if line.startswith("error:")] == [
        f"error: data/{name}: {why}"
        for name, why in (
            ("a.bin", f"sha256:{hashlib.sha256(shared).hexdigest()}: No space left on device"),
            ("b.bin", f"sha256:{hashlib.sha256(shared).hexdigest()}: No space left on device"),
            ("c.bin", "cannot write: No space left on device"),
        )
    ], out.stderr
    assert [line for line in lines if line.startswith("hint:")] == [
        "hint: free some disk space, then run the command again"
    ], out.stderr
    for name, data in (("a.bin", shared), ("b.bin", shared), ("c.bin", own)):
        assert (lazy / "data" / name).read_bytes() == ref_bytes(data)
    assert [p for p in lazy.rglob("*") if p.name.endswith(".tmp") or p.parent.name == "tmp"] == []
    status = subprocess.run(["git", "status", "--porcelain"], cwd=lazy, capture_output=True, text=True)
    assert (status.returncode, status.stdout) == (0, "")

    (small_disk / "filler").unlink()
    subprocess.run(["git", "cvfs", "ensure", "data"], cwd=lazy, check=True, capture_output=True)
    assert (lazy / "data/a.bin").read_bytes() == shared and (lazy / "data/c.bin").read_bytes() == own


def test_offload_frees_a_disk_too_full_to_take_a_ref(small_disk: Path) -> None:
    # What offload is for: the disk is full. Writing the ref beside the file first, as usual,
    # has no room; the file goes first (its bytes are in the archive, shown just now).
    project = new_project(small_disk, {})
    kept, changed = rand(8 * MiB, 7), rand(8 * MiB, 8)
    project.write("data/kept.bin", kept)
    project.write("data/changed.bin", changed)
    project.commit_all()
    project.write("data/changed.bin", rand(8 * MiB, 9))  # not what was archived: must stay
    # An mtime in the past: written in the second of an index write, the file would be racily
    # clean, and git's next index write cleans it again whatever the pathspec; on this full disk
    # that clean fails (new bytes with nowhere to go), and `git status` with it.
    past = time.time() - 60
    os.utime(project.root / "data/changed.bin", (past, past))
    fill(small_disk, 0)

    out = project.cvfs("offload", "--json", "data", check=False)
    report = json.loads(out.stdout)
    assert out.returncode == 1, out.stderr  # one file refused
    done = {item["path"]: item for item in report["files"]}
    assert done["data/kept.bin"]["offloaded"] and not done["data/changed.bin"]["offloaded"], report
    assert (project.root / "data/kept.bin").read_bytes() == ref_bytes(kept)
    assert (project.root / "data/changed.bin").stat().st_size == 8 * MiB  # left as it is
    assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize >= 7 * MiB  # freed
    assert [p for p in project.root.rglob("*.tmp") if ".git" not in p.parts] == []
    assert project.git("status", "--porcelain", "--", "data/kept.bin").stdout == ""  # its ref, as committed
