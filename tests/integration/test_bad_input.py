"""Bad input gets one clear error naming the file and the fix, a non-zero exit, and no change on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from git_cvfs.format.ref import Ref
from tests.conftest import Project, git, rand


def ref_of(data: bytes) -> Ref:
    return Ref(hashlib.sha256(data).hexdigest(), len(data))


def one_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.count("error:") >= 1


def published(project: Project, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        project.write(name, data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")


def test_malformed_ref_in_the_tree_is_checked_out_as_is_and_ensure_names_it(project: Project, tmp_path: Path) -> None:
    bad = b'{"cvfs":1,"oid":"sha256:../../../etc/passwd","size":5}\n'
    project.write("data/bad.bin", bad)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "bad ref slipped in")
    project.git("push", "-q", "origin", "main")
    clone = tmp_path / "c"
    proc = git(tmp_path, "clone", "-q", str(project.remote), "c")
    assert "data/bad.bin" in proc.stderr and "not a valid ref" in proc.stderr
    assert (clone / "data/bad.bin").read_bytes() == bad
    ensure = git(clone, "cvfs", "ensure", "data", check=False)
    assert ensure.returncode == 1 and "data/bad.bin" in ensure.stderr
    one_error(ensure.stderr)
    assert (clone / "data/bad.bin").read_bytes() == bad


def test_future_version_ref_says_upgrade(project: Project, tmp_path: Path) -> None:
    future = b'{"cvfs":2,"oid":"sha256:' + b"a" * 64 + b'","size":5}\n'
    project.write("data/new.bin", future)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "from the future")
    ensure = project.cvfs("ensure", "data", check=False)
    assert ensure.returncode == 1 and "newer git-cvfs" in ensure.stderr
    refused = project.git("commit", "--allow-empty", "-m", "x", check=False)  # nothing staged: allowed
    assert refused.returncode == 0


def test_corrupt_archive_object_never_reaches_the_work_tree(project: Project, tmp_path: Path) -> None:
    data = rand(50_000)
    published(project, {"data/a.bin": data})
    obj = project.archive_path(ref_of(data).hex)
    obj.chmod(0o644)
    obj.write_bytes(b"evil" + data[4:])  # same size, other bytes
    clone_proc = git(tmp_path, "clone", "-q", str(project.remote), "c")
    clone = tmp_path / "c"
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert "data/a.bin" in clone_proc.stderr and "do not match" in clone_proc.stderr
    ensure = git(clone, "cvfs", "ensure", "data/a.bin", check=False)
    assert ensure.returncode == 1
    assert str(project.archive.as_uri()) in ensure.stderr and "objects/" in ensure.stderr
    one_error(ensure.stderr)
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert not list((clone / ".git/cvfs/objects").rglob(ref_of(data).hex))


def test_hostile_inventory_row_is_refused_naming_the_shard(project: Project) -> None:
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    shard = project.root / ".cvfs/index/data.jsonl"
    shard.write_bytes(
        shard.read_bytes()
        + b'{"archives":{},"git":false,"oid":"sha256:'
        + b"a" * 64
        + b'","path":"../../outside","size":1}\n'
    )
    status = project.cvfs("status", check=False)
    assert status.returncode != 0 and ".cvfs/index/data.jsonl:2" in status.stderr and "unsafe path" in status.stderr
    one_error(status.stderr)
    shard.write_text("this is not json\n")
    status = project.cvfs("status", check=False)
    assert status.returncode != 0 and "not valid JSON" in status.stderr


def test_symlink_where_a_file_should_be_written_is_refused(project: Project, tmp_path: Path) -> None:
    data = rand(5000)
    published(project, {"data/a.bin": data})
    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    outside = tmp_path / "precious"
    outside.write_bytes(ref_of(data).encode())  # looks exactly like the ref
    (lazy / "data/a.bin").unlink()
    os.symlink(outside, lazy / "data/a.bin")
    ensure = git(lazy, "cvfs", "ensure", "data", check=False)
    assert ensure.returncode == 1 and "data/a.bin" in ensure.stderr and "symlink" in ensure.stderr
    assert outside.read_bytes() == ref_of(data).encode()
    assert (lazy / "data/a.bin").is_symlink()


def test_unknown_config_key_and_bad_size_fail_clearly_and_stage_nothing(project: Project) -> None:
    project.git("config", "-f", ".cvfs/config", "scope.minSiz", "5MB")
    status = project.cvfs("status", check=False)
    assert status.returncode == 2 and "unknown configuration key 'scope.minsiz'" in status.stderr.lower()
    assert "hint:" in status.stderr
    one_error(status.stderr)
    project.write("data/a.bin", rand(5000))
    add = project.git("add", "data/a.bin", check=False)
    assert add.returncode != 0 and "unknown configuration key" in add.stderr
    assert project.git("diff", "--cached", "--name-only").stdout == ""
    project.git("config", "-f", ".cvfs/config", "--unset", "scope.minSiz")
    project.git("config", "-f", ".cvfs/config", "scope.minSize", "5 lots")
    status = project.cvfs("status", check=False)
    assert status.returncode == 2 and "invalid scope.minsize '5 lots'" in status.stderr


def test_archive_directory_removed(project: Project, tmp_path: Path) -> None:
    data = rand(50_000)
    published(project, {"data/a.bin": data, "data/b.bin": rand(50_000, 1)})
    project.archive.rename(tmp_path / "archive-gone")
    clone_proc = git(tmp_path, "clone", "-q", str(project.remote), "c")  # the checkout still succeeds
    clone = tmp_path / "c"
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert "2 files left as refs" in clone_proc.stderr and "does not exist" in clone_proc.stderr
    assert "git cvfs ensure" in clone_proc.stderr
    ensure = git(clone, "cvfs", "ensure", "data", check=False)
    assert ensure.returncode == 1 and "unreachable" in ensure.stderr
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert git(clone, "status", "--porcelain").stdout == ""
    # The project still has the bytes in its cache, so `git cvfs push` names the archive it cannot reach.
    push = project.cvfs("push", check=False)
    assert push.returncode == 1 and "unreachable" in push.stderr
    one_error(push.stderr)
    # Bring the archive back: ensure finishes the job.
    (tmp_path / "archive-gone").rename(project.archive)
    git(clone, "cvfs", "ensure", "data")
    assert (clone / "data/a.bin").read_bytes() == data
    assert git(clone, "status", "--porcelain").stdout == ""


def test_usage_errors_are_one_line_with_a_hint(tmp_path: Path) -> None:
    from tests.conftest import cvfs

    for args in (["frobnicate"], ["ensure", "--nope"], ["status"]):
        proc = cvfs(tmp_path, *args, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("error: ") and "\nhint: " in proc.stderr and "Traceback" not in proc.stderr
