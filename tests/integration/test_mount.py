"""`git cvfs mount` on a real FUSE mount (/dev/fuse, libfuse 3 from Debian's fuse3), against a
directory archive, moto's S3 server and Azurite."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, cvfs, new_project, rand, ref_of
from tests.servers import SilentServer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Mounts:
    """Every directory a test mounted, unmounted at the end whatever happened."""

    def __init__(self) -> None:
        self.dirs: list[Path] = []

    def mount(self, repo: Path, directory: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
        directory.mkdir(parents=True, exist_ok=True)
        self.dirs.append(directory)
        out = cvfs(repo, "mount", *args, "--json", str(directory), env=env)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def status(self, directory: Path) -> dict[str, dict[str, int]]:
        return json.loads(cvfs(directory.parent, "mount", "--status", "--json", str(directory)).stdout)  # type: ignore[no-any-return]


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    m = Mounts()
    yield m
    for directory in m.dirs:
        subprocess.run(["fusermount3", "-u", "-z", str(directory)], capture_output=True)


def tree_files() -> dict[str, bytes]:
    return {
        "data/train/a.bin": rand(300_000, 1),
        "data/train/b.bin": rand(40_000, 2),
        "data/train/deep/c.bin": rand(1_200_000, 3),
        "data/val/d.bin": rand(5_000, 4),
        "data/val/same-as-d.bin": rand(5_000, 4),  # two paths, one object
        "README.md": b"# a dataset\n",
        "tools/run.sh": b"#!/bin/sh\necho run\n",
    }


def build(project: Project) -> dict[str, bytes]:
    files = tree_files()
    for rel, data in files.items():
        project.write(rel, data)
    os.chmod(project.root / "tools/run.sh", 0o755)
    os.symlink("data/val/d.bin", project.root / "latest")
    project.commit_all("dataset")
    project.git("push", "-q", "origin", "HEAD:main")
    return files


def fresh_clone(project: Project, tmp_path: Path) -> Path:
    """A clone whose cache holds nothing: every managed read must come from the archive."""
    clone = project.clone(tmp_path / "clone")
    shutil.rmtree(clone / ".git" / "cvfs" / "objects", ignore_errors=True)
    return clone


def listing(root: Path) -> dict[str, tuple[str, int, int | str]]:
    """path -> (kind, size, mode bits or link target), as `ls -lR` sees it."""
    out: dict[str, tuple[str, int, int | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", 0, 0)
            else:
                out[rel] = ("file", st.st_size, st.st_mode & 0o777)
    return out


def digests(root: Path) -> dict[str, str]:
    return {rel: sha((root / rel).read_bytes()) for rel, (kind, _, _) in listing(root).items() if kind == "file"}


@pytest.mark.parametrize("kind", ["directory", "s3", "azure"])
def test_the_mount_shows_the_commit_and_every_byte_matches(
    kind: str, tmp_path: Path, mounts: Mounts, request: pytest.FixtureRequest
) -> None:
    config: dict[str, str] = {}
    if kind != "directory":
        archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
        config = archive.config()
    project = new_project(tmp_path, config)
    files = build(project)
    clone = fresh_clone(project, tmp_path)
    mnt = tmp_path / "mnt"

    start = time.monotonic()
    mounted = mounts.mount(clone, mnt)
    first_ls = sorted(os.listdir(mnt))
    took = time.monotonic() - start
    print(f"time to first ls ({kind}): {took * 1000:.0f} ms")

    assert mounted["managed"] == 5
    assert mounted["files"] == len(project.git("ls-files").stdout.splitlines())
    assert first_ls == sorted([".cvfs", ".gitattributes", "README.md", "data", "latest", "tools"])
    # Every path at its real size and mode, as the clone's checkout has it; nothing read yet.
    assert listing(mnt) == listing(clone)
    assert mounts.status(mnt)["hydrated"]["files"] == 0
    assert os.stat(mnt / "tools/run.sh").st_mode & 0o111
    # Every byte as committed (the clone materialized them through the filter).
    assert digests(mnt) == digests(clone)
    for rel, data in files.items():
        assert (mnt / rel).read_bytes() == data
    assert (mnt / "latest").read_bytes() == files["data/val/d.bin"]
    s = mounts.status(mnt)
    assert s["hydrated"] == {"files": 5, "objects": 4, "bytes": 300_000 + 40_000 + 1_200_000 + 5_000}
    assert s["failed"]["files"] == 0 and s["pending"]["files"] == 0
    # The work tree was never written: the mount reads into the cache only.
    assert (clone / ".git" / "cvfs" / "objects").is_dir()


def test_an_older_revision_and_concurrent_readers(tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    build(project)
    old = project.git("rev-parse", "HEAD").stdout.strip()
    newer = {f"data/many/f{i:02d}.bin": rand(20_000 + i * 997, 100 + i) for i in range(24)}
    for rel, data in newer.items():
        project.write(rel, data)
    project.write("data/train/a.bin", rand(300_000, 99))
    project.commit_all("more")
    project.git("push", "-q", "origin", "HEAD:main")
    clone = fresh_clone(project, tmp_path)

    mounts.mount(clone, tmp_path / "old", "--rev", old)
    assert not (tmp_path / "old/data/many").exists()
    assert (tmp_path / "old/data/train/a.bin").read_bytes() == rand(300_000, 1)

    mnt = tmp_path / "new"
    mounts.mount(clone, mnt)
    wrong: list[str] = []

    # Sixteen readers at once, over the same and different files, each reading in odd chunks.
    def reader(n: int) -> None:
        for rel in sorted(newer)[n % 5 :: 3]:
            with open(mnt / rel, "rb") as f:
                got = b"".join(iter(lambda: f.read(7_919), b""))
            if got != newer[rel]:
                wrong.append(rel)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert (mnt / "data/train/a.bin").read_bytes() == rand(300_000, 99)


def test_what_a_reader_waits_for_comes_first_then_its_directory_small_before_large(
    tmp_path: Path, mounts: Mounts
) -> None:
    project = new_project(tmp_path, {"transfer.concurrency": "1"})
    sizes = {"big.bin": 900_000, "mid.bin": 200_000, "small.bin": 3_000, "tiny.bin": 1_500, "huge.bin": 1_400_000}
    for name, size in sizes.items():
        project.write(f"data/d/{name}", rand(size, size))
    project.write("data/elsewhere/x.bin", rand(50_000, 7))
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = fresh_clone(project, tmp_path)
    mnt = tmp_path / "mnt"
    mounts.mount(clone, mnt, env={"GIT_CVFS_TRACE": "1"})

    assert (mnt / "data/d/mid.bin").read_bytes() == rand(200_000, 200_000)
    deadline = time.monotonic() + 30
    while mounts.status(mnt)["hydrated"]["files"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mounts.status(mnt)["hydrated"]["files"] == 5  # the rest of data/d, not data/elsewhere
    log = next((clone / ".git" / "cvfs" / "logs").glob("mount-*.log")).read_text()
    order = []
    by_key = {ref_of(rand(size, size)).hex: name for name, size in sizes.items()}
    for line in log.splitlines():
        if " download_to " in line or " read_range " in line:
            for hex_digest, name in by_key.items():
                if hex_digest in line and name not in order:
                    order.append(name)
    assert order == ["mid.bin", "tiny.bin", "small.bin", "big.bin", "huge.bin"]


def test_a_budget_evicts_the_least_recently_read_and_evicted_files_read_again(tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    files = {f"data/shard-{i}/part.bin": rand(1_000_000, 50 + i) for i in range(5)}
    project.publish(files)
    clone = fresh_clone(project, tmp_path)
    mnt = tmp_path / "mnt"
    mounts.mount(clone, mnt, "--budget", "2500KB")
    objects = clone / ".git" / "cvfs" / "objects"

    def cached() -> set[str]:
        return {p.name for p in objects.rglob("*") if p.is_file()}

    def settled(check: Callable[[], bool]) -> bool:
        """The kernel tells the daemon a file was closed after close() returns (FUSE release is
        asynchronous), and the daemon evicts then: give it a moment."""
        deadline = time.monotonic() + 10
        while not check() and time.monotonic() < deadline:
            time.sleep(0.05)
        return check()

    for rel in sorted(files):  # one directory each: no neighbours to prefetch
        assert (mnt / rel).read_bytes() == files[rel]
    hexes = {rel: ref_of(data).hex for rel, data in files.items()}
    first, *_, last = sorted(files)
    assert settled(lambda: len(cached()) == 2)
    assert hexes[last] in cached() and hexes[first] not in cached()
    assert sum((p.stat().st_size for p in objects.rglob("*") if p.is_file()), 0) <= 2_500 * 1024
    s = mounts.status(mnt)
    assert s["evicted"] == 3 and s["fetched_bytes"] == 2_000_000
    # Evicted, still readable: it hydrates again, and the budget still holds.
    assert (mnt / first).read_bytes() == files[first]
    assert settled(lambda: len(cached()) == 2) and hexes[first] in cached()


def test_a_failing_archive_fails_that_file_with_eio_and_the_rest_reads(tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    good, gone, lies = rand(30_000, 1), rand(40_000, 2), rand(50_000, 3)
    project.write("data/a/good.bin", good)
    project.write("data/b/gone.bin", gone)
    project.write("data/c/lies.bin", lies)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = fresh_clone(project, tmp_path)
    project.archive_path(ref_of(gone).hex).unlink()
    liar = project.archive_path(ref_of(lies).hex)
    os.chmod(liar, 0o644)
    liar.write_bytes(rand(50_000, 4))  # the right key and size, other bytes
    mnt = tmp_path / "mnt"
    mounts.mount(clone, mnt)

    for rel in ("data/b/gone.bin", "data/c/lies.bin"):
        with pytest.raises(OSError) as err:
            (mnt / rel).read_bytes()
        assert err.value.errno == errno.EIO
    assert (mnt / "data/a/good.bin").read_bytes() == good
    s = mounts.status(mnt)
    assert s["failed"]["files"] == 2 and s["hydrated"]["files"] == 1
    log = next((clone / ".git" / "cvfs" / "logs").glob("mount-*.log")).read_text()
    lines = [line for line in log.splitlines() if "cannot read" in line]
    assert len(lines) == 2
    assert any("data/b/gone.bin" in line and "primary" in line for line in lines)
    assert any("data/c/lies.bin" in line and "do not match" in line for line in lines)
    assert not (clone / ".git/cvfs/objects").exists() or ref_of(lies).hex not in {
        p.name for p in (clone / ".git/cvfs/objects").rglob("*")
    }


def test_an_unreachable_archive_gives_eio_within_the_timeout_not_a_hang(
    tmp_path: Path, mounts: Mounts, s3_archive: CloudArchive
) -> None:
    project = new_project(tmp_path, s3_archive.config())
    project.write("data/x.bin", rand(20_000, 5))
    project.write("plain.txt", b"plain\n")
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = fresh_clone(project, tmp_path)
    silent = SilentServer()
    try:
        subprocess.run(["git", "config", "cvfs.archive.primary.endpoint", silent.url], cwd=clone, check=True)
        cvfs(clone, "trust", "--yes")
        env = {"GIT_CVFS_TRANSFER_TIMEOUT": "2", "GIT_CVFS_TRANSFER_ATTEMPTS": "1"}
        mnt = tmp_path / "mnt"
        mounts.mount(clone, mnt, env=env)
        start = time.monotonic()
        with pytest.raises(OSError) as err:
            (mnt / "data/x.bin").read_bytes()
        took = time.monotonic() - start
        assert err.value.errno == errno.EIO
        assert took < 20, took
        assert (mnt / "plain.txt").read_bytes() == b"plain\n"
    finally:
        silent.stop()


def test_writes_are_refused_with_erofs_and_the_log_says_how_to_get_a_work_tree(tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    build(project)
    mnt = tmp_path / "mnt"
    mounts.mount(project.root, mnt)
    attempts = [
        lambda: (mnt / "new.txt").write_bytes(b"x"),
        lambda: open(mnt / "README.md", "ab").close(),
        lambda: (mnt / "README.md").unlink(),
        lambda: (mnt / "newdir").mkdir(),
        lambda: os.rename(mnt / "README.md", mnt / "R.md"),
        lambda: os.chmod(mnt / "README.md", 0o600),
        lambda: os.truncate(mnt / "data/train/a.bin", 0),
    ]
    for attempt in attempts:
        with pytest.raises(OSError) as err:
            attempt()
        assert err.value.errno == errno.EROFS
    assert (mnt / "README.md").read_bytes() == b"# a dataset\n"
    log = next((project.root / ".git" / "cvfs" / "logs").glob("mount-*.log")).read_text()
    assert "read-only" in log and "git worktree add" in log


def _daemon_pid(mnt: Path, mounts: Mounts) -> int:
    return int(mounts.status(mnt)["pid"])  # type: ignore[call-overload]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_unmount_cleanly(sig: int, tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    build(project)
    mnt = tmp_path / "mnt"
    mounts.mount(project.root, mnt)
    pid = _daemon_pid(mnt, mounts)
    os.kill(pid, sig)
    deadline = time.monotonic() + 10
    while os.path.ismount(mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.ismount(mnt)
    assert os.listdir(mnt) == []
    gone = cvfs(project.root, "mount", "--status", str(mnt), check=False)
    assert gone.returncode == 2 and "not a git-cvfs mount" in gone.stderr


def test_a_killed_daemon_leaves_a_sound_cache_and_a_stale_mount_that_umount_clears(
    tmp_path: Path, mounts: Mounts
) -> None:
    project = new_project(tmp_path, {})
    build(project)
    clone = fresh_clone(project, tmp_path)
    mnt = tmp_path / "mnt"
    mounts.mount(clone, mnt)
    assert (mnt / "data/train/a.bin").read_bytes() == rand(300_000, 1)
    os.kill(_daemon_pid(mnt, mounts), signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(OSError) as err:
        os.listdir(mnt)
    assert err.value.errno == errno.ENOTCONN
    stale = cvfs(clone, "mount", "--status", str(mnt), check=False)
    assert stale.returncode == 1 and "git cvfs umount" in stale.stderr
    refused = cvfs(clone, "mount", str(mnt), check=False)
    assert refused.returncode == 2 and "umount" in refused.stderr
    cleared = cvfs(clone, "umount", str(mnt))
    assert "stale" in cleared.stderr
    assert not os.path.ismount(mnt) and os.listdir(mnt) == []
    assert cvfs(clone, "fsck").returncode == 0  # every cache object still hashes to its name
    mounts.mount(clone, mnt)
    assert (mnt / "data/train/deep/c.bin").read_bytes() == rand(1_200_000, 3)


def test_mount_refuses_what_it_cannot_do_with_a_hint(tmp_path: Path, mounts: Mounts) -> None:
    project = new_project(tmp_path, {})
    build(project)
    missing = cvfs(project.root, "mount", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2 and "hint: create it first" in missing.stderr
    (tmp_path / "m").mkdir()
    norev = cvfs(project.root, "mount", "--rev", "no-such-branch", str(tmp_path / "m"), check=False)
    assert norev.returncode == 1 and "no commit 'no-such-branch'" in norev.stderr and "hint:" in norev.stderr
    assert not os.path.ismount(tmp_path / "m")
    notmounted = cvfs(project.root, "umount", str(tmp_path / "m"), check=False)
    assert notmounted.returncode == 2 and "is not mounted" in notmounted.stderr
    mounts.mount(project.root, tmp_path / "m")
    again = cvfs(project.root, "mount", str(tmp_path / "m"), check=False)
    assert again.returncode == 2 and "already a mount point" in again.stderr
    done = cvfs(project.root, "umount", str(tmp_path / "m"))
    assert "unmounted" in done.stderr and not os.path.ismount(tmp_path / "m")


def test_a_daemon_that_fails_before_mounting_is_reported_with_what_it_said(tmp_path: Path) -> None:
    project = new_project(tmp_path, {})
    build(project)
    (tmp_path / "m").mkdir()
    env = {"GIT_CVFS_FAIL_AT": "mount:serve:ENOSPC"}
    proc = cvfs(project.root, "mount", str(tmp_path / "m"), env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the mount daemon stopped before")
    assert "No space left on device" in proc.stderr and "hint:" in proc.stderr
    assert not os.path.ismount(tmp_path / "m")
