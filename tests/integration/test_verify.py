"""Verify, don't trust (invariants 1, 4, 10, 11): nothing frees bytes or says "safe" without
asking the archive's stored bytes, at the moment it acts.

Each test plants what the real world does: an archive that holds other bytes under the right
key and size, an edit in the middle of a command, a writer holding a file open, a locked
index, an archive on another filesystem, a killed download.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, git, new_project, paused, rand, ref_bytes, tmpfs
from tests.servers import FaultProxy, azurite_connection_string


def hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(data: bytes) -> str:
    h = hex_of(data)
    return f"team/objects/{h[:2]}/{h[2:4]}/{h}"


class Store:
    """Reads and writes an archive behind git-cvfs's back, as another tool or bit rot would."""

    def __init__(self, kind: str, project: Project, cloud: CloudArchive | None) -> None:
        self.kind, self.project, self.cloud = kind, project, cloud

    def put(self, data: bytes, body: bytes) -> None:
        """Store `body` where the object `data` belongs."""
        if self.kind == "file":
            path = self.project.archive_path(hex_of(data))
            before = path.stat() if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                path.chmod(0o644)
            path.write_bytes(body)
            if before is not None:  # the etag (size, mtime) is what it was
                os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        elif self.kind == "s3":
            import boto3

            assert self.cloud is not None
            client = boto3.client("s3", endpoint_url=self.cloud.endpoint, region_name="us-east-1")
            client.put_object(Bucket="cvfs-test", Key=key_of(data), Body=body)
        else:
            from azure.storage.blob import BlobServiceClient

            assert self.cloud is not None and self.cloud.endpoint is not None
            conn = azurite_connection_string(self.cloud.endpoint.rsplit("/", 1)[0])
            container = self.cloud.url.split("/")[3]
            blob = BlobServiceClient.from_connection_string(conn).get_blob_client(container, key_of(data))
            blob.upload_blob(body, overwrite=True)

    def get(self, data: bytes) -> bytes:
        if self.kind == "file":
            return self.project.archive_path(hex_of(data)).read_bytes()
        if self.kind == "s3":
            import boto3

            assert self.cloud is not None
            client = boto3.client("s3", endpoint_url=self.cloud.endpoint, region_name="us-east-1")
            return bytes(client.get_object(Bucket="cvfs-test", Key=key_of(data))["Body"].read())
        from azure.storage.blob import BlobServiceClient

        assert self.cloud is not None and self.cloud.endpoint is not None
        conn = azurite_connection_string(self.cloud.endpoint.rsplit("/", 1)[0])
        container = self.cloud.url.split("/")[3]
        return bytes(
            BlobServiceClient.from_connection_string(conn)
            .get_blob_client(container, key_of(data))
            .download_blob()
            .readall()
        )


@pytest.fixture(params=["file", "s3", "azure"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "file":
        project = new_project(tmp_path, {})
        return Store("file", project, None)
    cloud: CloudArchive = request.getfixturevalue(f"{request.param}_archive")
    return Store(request.param, new_project(tmp_path, cloud.config()), cloud)


def damaged(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


def test_an_object_already_under_its_key_with_other_bytes_is_replaced_not_recorded(store: Store) -> None:
    project = store.project
    data = rand(40_000, 1)
    store.put(data, damaged(data))  # right key, right size, wrong bytes: there before the commit
    project.write("data/a.bin", data)
    project.commit_all()
    assert store.get(data) == data  # the commit's upload found it was not the object, and replaced it
    assert project.cvfs("reconcile", "--verify").returncode == 0
    out = json.loads(project.cvfs("offload", "data/a.bin", "--json").stdout)
    assert out["files"][0]["offloaded"]
    project.cvfs("ensure", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == data


def test_a_copy_changed_after_upload_is_never_trusted(store: Store) -> None:
    project = store.project
    project.git("config", "cvfs.cache.keep", "true")  # so prune has a cache copy to consider
    data = rand(40_000, 2)
    project.write("data/a.bin", data)
    project.commit_all()
    assert project.cvfs("offload", "--dry-run", "data/a.bin").returncode == 0
    store.put(data, damaged(data))  # bit rot, or another tool: same key, same size
    out = project.cvfs("offload", "data/a.bin", check=False)
    assert out.returncode == 1 and "data/a.bin" in out.stderr and "primary archive" in out.stderr
    assert (project.root / "data/a.bin").read_bytes() == data  # the only good copy is still here
    guard = json.loads(project.cvfs("guard", "--json", "data/a.bin", check=False).stdout)
    assert guard["at_risk"] and guard["checked"] == "archives"
    prune = json.loads(project.cvfs("prune", "--dry-run", "--json").stdout)
    assert prune["dropped"] == [] and hex_of(data) in prune["kept"]
    audit = json.loads(project.cvfs("reconcile", "--verify", "--json", check=False).stdout)
    assert audit["read_back"] == 1
    kinds = {(f["kind"], f["path"]) for f in audit["findings"]}
    assert ("corrupt_in_archive", "data/a.bin") in kinds  # S3 and Azure also see a new etag; a directory cannot
    assert kinds <= {("corrupt_in_archive", "data/a.bin"), ("etag_drift", "data/a.bin")}
    # The record alone still says all is well: only reading the bytes found it.
    assert json.loads(project.cvfs("guard", "--offline", "--json", "data/a.bin").stdout)["checked"] == "records"
    project.cvfs("push")  # the archive is asked again, finds other bytes, and gets the object back
    assert store.get(data) == data
    assert project.cvfs("offload", "data/a.bin").returncode == 0


def test_guard_dry_run_and_status_ask_the_archives_and_offline_says_so(project: Project) -> None:
    data = rand(40_000, 3)
    project.git("config", "cvfs.cache.keep", "true")
    project.write("data/a.bin", data)
    project.commit_all()
    project.archive_path(hex_of(data)).unlink()  # gone from the archive; this machine's records still say archived
    guard = project.cvfs("guard", "data/a.bin", check=False)
    assert guard.returncode == 1 and "does not hold it" in guard.stdout and "verified now" in guard.stdout
    dry = json.loads(project.cvfs("offload", "--dry-run", "--json", "data/a.bin", check=False).stdout)
    assert dry["checked"] == "archives" and dry["files"][0]["refused"]
    status = json.loads(project.cvfs("status", "--json").stdout)
    assert status["pending_upload"] == ["data/a.bin"] and status["checked"] == "archives"
    offline = json.loads(project.cvfs("status", "--json", "--offline").stdout)
    assert offline["pending_upload"] == [] and offline["checked"] == "records"  # the records are wrong, and say so
    assert "records" in project.cvfs("guard", "--offline", "data/a.bin").stdout
    dry_offline = project.cvfs("offload", "--dry-run", "--offline", "data/a.bin")
    assert "no archive was asked" in dry_offline.stdout


def test_min_copies_needs_that_many_verified_copies(project: Project, tmp_path: Path) -> None:
    second = tmp_path / "second"
    second.mkdir()
    project.git("config", "-f", ".cvfs/config", "archive.secondary.url", second.as_uri())
    project.git("config", "-f", ".cvfs/config", "archive.minCopies", "2")
    project.cvfs("trust", "--yes")
    data = rand(40_000, 4)
    project.write("data/a.bin", data)
    project.commit_all()
    assert project.cvfs("offload", "data/a.bin").returncode == 0  # both archives got it at commit
    project.cvfs("ensure", "data/a.bin")
    (second / "objects" / hex_of(data)[:2] / hex_of(data)[2:4] / hex_of(data)).unlink()
    out = project.cvfs("offload", "data/a.bin", check=False)
    assert out.returncode == 1 and "archive.minCopies is 2" in out.stderr
    audit = json.loads(project.cvfs("reconcile", "--json", check=False).stdout)
    assert "below_min_copies" in {f["kind"] for f in audit["findings"]}
    project.cvfs("push", "--archive", "secondary")
    assert project.cvfs("offload", "data/a.bin").returncode == 0
    bad = project.git("config", "-f", ".cvfs/config", "archive.minCopies", "3")
    assert bad.returncode == 0
    refused = project.cvfs("status", check=False)
    assert refused.returncode == 2 and "archive.minCopies" in refused.stderr and "hint:" in refused.stderr


def test_an_edit_after_ensure_wrote_a_file_is_left_for_git_to_see(project: Project, tmp_path: Path) -> None:
    files = {f"data/f{i}.bin": rand(20_000, 10 + i) for i in range(3)}
    for name, data in files.items():
        project.write(name, data)
    project.commit_all()
    project.git("checkout", "-q", "-b", "other")
    project.write("data/f0.bin", rand(20_000, 99))
    project.commit_all("other")
    project.git("push", "-q", "origin", "main", "other")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "branch", "-q", "other", "origin/other")
    marker = tmp_path / "marker"
    ensure = paused(lazy, "ensure:before-index", marker, "ensure", "data")
    with open(lazy / "data/f0.bin", "ab") as f:  # written, and edited before the index is told
        f.write(b"an edit")
    # More than a second before the index is written, as when ensure has many files to write:
    # git's own racy-clean check would catch an edit in the index's second, but not this one.
    time.sleep(1.1)
    marker.unlink()
    assert ensure.wait(60) == 0, ensure.communicate()
    assert git(lazy, "status", "--porcelain").stdout == " M data/f0.bin\n"
    # So git protects the edit: a checkout that would replace the file refuses instead.
    blocked = git(lazy, "checkout", "-q", "other", check=False)
    assert blocked.returncode != 0 and "would be overwritten" in blocked.stderr
    assert (lazy / "data/f0.bin").read_bytes() == files["data/f0.bin"] + b"an edit"


def test_offload_refuses_a_file_open_for_writing_or_changed_during_the_replace(
    project: Project, tmp_path: Path
) -> None:
    data = rand(40_000, 5)
    project.write("data/a.bin", data)
    project.write("data/b.bin", rand(40_000, 6))
    project.commit_all()
    with open(project.root / "data/a.bin", "ab"):  # a process still writing it
        out = project.cvfs("offload", "data/a.bin", check=False)
        assert out.returncode == 1 and "data/a.bin is open for writing by another process" in out.stderr
        assert "hint:" in out.stderr
    assert (project.root / "data/a.bin").read_bytes() == data
    marker = tmp_path / "marker"
    offload = paused(project.root, "offload:before-replace", marker, "offload", "data/b.bin")
    with open(project.root / "data/b.bin", "r+b") as f:  # same size, other bytes, after it was hashed
        f.write(b"X")
    marker.unlink()
    _, err = offload.communicate(timeout=60)
    assert offload.returncode == 1 and "data/b.bin changed while it was being checked" in err
    assert (project.root / "data/b.bin").read_bytes()[:1] == b"X"
    assert project.cvfs("offload", "data/a.bin").returncode == 0  # nobody writing it now


def test_a_locked_index_is_an_error_naming_the_lock_and_a_rerun_finishes(project: Project, tmp_path: Path) -> None:
    data = rand(40_000, 7)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    lock = lazy / ".git/index.lock"
    lock.write_text("")
    started = time.monotonic()
    out = git(lazy, "cvfs", "ensure", "data", check=False)
    assert out.returncode == 1 and "index.lock" in out.stderr and "hint:" in out.stderr, out.stderr
    assert "internal error" not in out.stderr and time.monotonic() - started < 30
    assert (lazy / "data/a.bin").read_bytes() == data  # the bytes are there; only the index is behind
    lock.unlink()
    git(lazy, "cvfs", "ensure", "data")
    assert git(lazy, "status", "--porcelain").stdout == ""
    lock.write_text("")
    out = git(lazy, "cvfs", "offload", "data/a.bin", check=False)
    assert out.returncode == 1 and "index.lock" in out.stderr


def test_a_full_disk_while_writing_the_index_is_the_users_problem_not_a_bug(project: Project, tmp_path: Path) -> None:
    project.write("data/a.bin", rand(40_000, 8))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    out = git(lazy, "cvfs", "ensure", "data", env={"GIT_CVFS_FAIL_AT": "index:write:ENOSPC"}, check=False)
    assert (
        out.returncode == 1 and "No space left on device" in out.stderr and "hint: free some disk space" in out.stderr
    )
    assert "internal error" not in out.stderr
    git(lazy, "cvfs", "ensure", "data")
    assert git(lazy, "status", "--porcelain").stdout == ""


def test_a_malformed_azure_connection_string_is_not_an_internal_error(
    azure_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(tmp_path, azure_archive.config())
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=devstoreaccount1;AccountKey=secretpart;Garbage")
    project.write("data/a.bin", rand(40_000, 9))
    project.git("add", "-A")
    commit = project.git("commit", "-q", "-m", "a", check=False)
    assert commit.returncode == 0 and "warning:" in commit.stderr and "malformed" in commit.stderr  # as if unreachable
    out = project.cvfs("push", check=False)
    assert out.returncode == 1 and "malformed" in out.stderr and "internal error" not in out.stderr
    assert "secretpart" not in out.stderr + commit.stderr


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A directory on another filesystem (tmpfs): copies into it cannot be done in the kernel."""
    with tmpfs(tmp_path / "tmpfs", "256m") as mount:
        yield mount


def test_a_directory_archive_on_another_filesystem_works_everywhere(tmp_path: Path, other_fs: Path) -> None:
    archive = other_fs / "archive"
    archive.mkdir()
    project = new_project(tmp_path, {"archive.primary.url": archive.as_uri()})
    small, large = rand(40_000, 11), rand(70 << 20, 12)  # the large one goes the resumable way
    project.write("data/small.bin", small)
    project.write("data/large.bin", large)
    project.commit_all()  # push: staged copies into the tmpfs archive
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/small.bin").read_bytes() == small and (clone / "data/large.bin").read_bytes() == large
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/large.bin").read_bytes() == large
    assert json.loads(git(lazy, "cvfs", "offload", "--json", "data").stdout)["ok"]
    assert (lazy / "data/large.bin").read_bytes() == ref_bytes(large)


@pytest.fixture
def no_hard_links(tmp_path: Path) -> Iterator[Path]:
    """A directory on a filesystem without hard links (tests/nolink_fs.py, through FUSE)."""
    source, mount = tmp_path / "nolink-source", tmp_path / "nolink"
    source.mkdir()
    mount.mkdir()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tests.nolink_fs", str(source), str(mount)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mount):
            assert daemon.poll() is None, daemon.communicate()
            assert time.monotonic() < deadline, "the FUSE filesystem never mounted"
            time.sleep(0.05)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        daemon.wait(timeout=30)


def test_a_directory_archive_on_a_filesystem_without_hard_links(tmp_path: Path, no_hard_links: Path) -> None:
    # An SMB share, a FAT or exFAT disk, a bucket mounted with rclone: link(2) says EPERM, and
    # the archive's create-if-absent must be had another way.
    archive = no_hard_links / "archive"
    archive.mkdir()
    assert subprocess.run(["ln", str(archive / "x"), str(archive / "y")], capture_output=True).returncode != 0
    project = new_project(tmp_path, {"archive.primary.url": archive.as_uri()})
    small, large = rand(40_000, 21), rand(3 << 20, 22)
    project.write("data/small.bin", small)
    project.write("data/large.bin", large)
    project.git("add", "-A")
    commit = project.git("commit", "-q", "-m", "both")
    assert "warning" not in commit.stderr, commit.stderr
    for data in (small, large):
        hex_digest = hashlib.sha256(data).hexdigest()
        assert (archive / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest).read_bytes() == data
    project.git("push", "-q", "origin", "main")
    assert "no drift" in project.cvfs("reconcile").stdout
    # The same bytes again, from another repository: found there, hashed, kept.
    other = new_project(tmp_path, {"archive.primary.url": archive.as_uri()}, name="other")
    other.write("data/again.bin", large)
    other.git("add", "-A")
    again = other.git("commit", "-q", "-m", "again")
    assert "warning" not in again.stderr, again.stderr
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/small.bin").read_bytes() == small and (lazy / "data/large.bin").read_bytes() == large


def test_only_our_own_dead_writers_temp_files_are_removed(project: Project) -> None:
    project.write("data/a.bin", rand(40_000, 13))
    project.commit_all()
    data_dir = project.root / "data"
    old = time.time() - 3600
    users = {  # named like ours in the ways a person might, or ours but someone else's
        ".a.bin.cvfs-999999-123.tmp": None,  # the old pattern
        ".a.bin.cvfs-999999-0123456789abcdeg.tmp": None,  # not hex
        ".notes.cvfs-999999-0123456789abcdef.tmp": 65534,  # ours in form, another user's file
    }
    for name, owner in users.items():
        (data_dir / name).write_text("mine")
        if owner is not None:
            os.chown(data_dir / name, owner, owner)
        os.utime(data_dir / name, (old, old))
    ours = data_dir / ".a.bin.cvfs-999999-fedcba9876543210.tmp"  # a dead writer's, an hour old
    ours.write_text("leftover")
    os.utime(ours, (old, old))
    young = data_dir / ".b.bin.cvfs-999999-0000000000000001.tmp"  # a dead writer's, just now
    young.write_text("leftover")
    project.cvfs("offload", "data/a.bin")  # writes into data/: sweeps it
    assert not ours.exists() and young.exists()
    assert all((data_dir / name).read_text() == "mine" for name in users)


def test_a_killed_large_download_resumes_from_what_it_has(s3_archive: CloudArchive, tmp_path: Path) -> None:
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        project = new_project(tmp_path, s3_archive.config(endpoint=proxy.url))
        data = rand(80 << 20, 14)  # five 16 MiB ranges
        project.write("data/big.bin", data)
        project.commit_all()
        project.git("push", "-q", "origin", "main")
        lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
        git(lazy, "config", "cvfs.transfer.concurrency", "1")  # ranges in order: the kill comes after two
        died = git(lazy, "cvfs", "ensure", "data", env={"GIT_CVFS_CRASH_AT": "transfer:mid-resumable"}, check=False)
        assert died.returncode != 0
        proxy.requests.clear()
        proxy.headers.clear()
        git(lazy, "cvfs", "ensure", "data")
        assert hashlib.sha256((lazy / "data/big.bin").read_bytes()).hexdigest() == hex_of(data)
        ranges = [h.get("Range") for r, h in zip(proxy.requests, proxy.headers, strict=True) if r.startswith("GET")]
        assert len(ranges) == 3 and "bytes=0-" not in " ".join(str(r) for r in ranges), ranges
        assert not list((lazy / ".git/cvfs/tmp").glob("partial-*"))
        # A partial file whose bytes were damaged meanwhile: the whole-object hash catches it, and
        # the download starts again from zero.
        git(lazy, "cvfs", "offload", "data/big.bin")
        died = git(lazy, "cvfs", "ensure", "data", env={"GIT_CVFS_CRASH_AT": "transfer:mid-resumable"}, check=False)
        partial = next((lazy / ".git/cvfs/tmp").glob("partial-*[0-9a-f]"))
        umask = os.umask(0)
        os.umask(umask)
        assert partial.stat().st_mode & 0o777 == 0o666 & ~umask  # another account may resume it
        with open(partial, "r+b") as f:
            f.write(b"rot")
        git(lazy, "cvfs", "ensure", "data")
        assert hashlib.sha256((lazy / "data/big.bin").read_bytes()).hexdigest() == hex_of(data)
    finally:
        proxy.stop()


def test_orphans_are_only_objects_no_ref_or_history_names(project: Project) -> None:
    old, branch, tag, current, orphan = (rand(30_000, 20 + i) for i in range(5))
    project.write("data/a.bin", old)
    project.commit_all("old")
    project.write("data/a.bin", current)
    project.commit_all("current")  # `old` only in history now
    project.git("checkout", "-q", "-b", "side")
    project.write("data/b.bin", branch)
    project.commit_all("side")
    project.write("data/c.bin", tag)
    project.commit_all("tagged")
    project.git("tag", "v1")
    project.git("reset", "-q", "--hard", "HEAD~1")  # `tag` is on the tag only
    project.git("checkout", "-q", "main")
    orphan_path = project.archive_path(hex_of(orphan))
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    report = json.loads(project.cvfs("reconcile", "--orphans", "--json", check=False).stdout)
    orphans = {f["path"].rsplit("/", 1)[-1] for f in report["findings"] if f["kind"] == "orphan"}
    assert orphans == {hex_of(orphan)}


def test_reconcile_verify_reads_a_sample_when_asked(project: Project) -> None:
    for i in range(4):
        project.write(f"data/f{i}.bin", rand(20_000, 30 + i))
    project.commit_all()
    full = json.loads(project.cvfs("reconcile", "--verify", "--json").stdout)
    half = json.loads(project.cvfs("reconcile", "--verify", "--sample", "50%", "--json").stdout)
    assert (full["read_back"], half["read_back"], full["ok"], half["ok"]) == (4, 2, True, True)
    bad = project.cvfs("reconcile", "--sample", "50%", check=False)
    assert bad.returncode == 2 and "--verify" in bad.stderr
    assert project.cvfs("reconcile", "--verify", "--sample", "0%", check=False).returncode == 2
