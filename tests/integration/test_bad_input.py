"""Bad input gets one clear error naming the file and the fix, a non-zero exit, and no change on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Project, git, rand, ref_of


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
    # prune cannot ask either: it keeps every object, and says it could not do its job (it exited 0)
    project.write("data/c.bin", rand(50_000, 2))
    project.git("add", "data/c.bin")  # an object in the cache, not archived
    prune = project.cvfs("prune", "--json", check=False)
    assert prune.returncode == 1 and "kept unchecked" in prune.stderr and "doctor --probe" in prune.stderr
    report = json.loads(prune.stdout)
    assert report["ok"] is False and report["dropped"] == [] and list(report["unasked"]) == list(report["kept"])
    assert len(report["kept"]) == 1
    # status cannot ask it: pending uploads come from this machine's records, and it says so
    # (they were an empty list, which reads as "everything is archived")
    status = json.loads(project.cvfs("status", "--json").stdout)
    assert status["checked"] == "records" and "primary" in status["archive_errors"]
    assert status["pending_upload"] == ["data/c.bin"]
    assert "the primary archive could not be asked" in project.cvfs("status").stdout
    # Bring the archive back: ensure finishes the job, and prune's answer is an answer again.
    (tmp_path / "archive-gone").rename(project.archive)
    report = json.loads(project.cvfs("prune", "--json").stdout)  # exit 0: kept as not archived, not unasked
    assert report["ok"] is True and len(report["kept"]) == 1 and report["unasked"] == {}
    git(clone, "cvfs", "ensure", "data")
    assert (clone / "data/a.bin").read_bytes() == data
    assert git(clone, "status", "--porcelain").stdout == ""


def test_usage_errors_are_one_line_with_a_hint(tmp_path: Path) -> None:
    from tests.conftest import cvfs

    for args in (["frobnicate"], ["ensure", "--nope"], ["status"]):
        proc = cvfs(tmp_path, *args, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("error: ") and "\nhint: " in proc.stderr and "Traceback" not in proc.stderr


def test_archive_urls_pointing_nowhere_sensible_are_refused(project: Project, tmp_path: Path) -> None:
    """.cvfs/config is committed, so whoever can push chooses the URL: / , kernel filesystems,
    git's own object store and the work tree are refused before anything is written."""
    data = rand(5000, 40)
    project.write("data/a.bin", data)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "a")
    git_objects_before = sorted(p.name for p in (project.root / ".git/objects").iterdir())
    for url, why in [
        ("file:///", "not an absolute directory other than /"),
        ("file:///proc", "kernel filesystem"),
        ("file:///dev/shm/cvfs", "kernel filesystem"),
        ((project.root / ".git").as_uri(), "inside the git directory"),
        ((project.root / "data").as_uri(), "inside the work tree"),
        ("file://elsewhere.example.com/share", "names a host"),
    ]:
        project.git("config", "-f", ".cvfs/config", "archive.primary.url", url)
        push = project.cvfs("push", check=False)  # a location nobody approved: never looked at
        assert push.returncode == 2 and "not approved on this machine" in push.stderr, (url, push.stderr)
        one_error(push.stderr)
        # Approved by mistake, each is still refused for what it is.
        git(tmp_path, "config", "--global", "--add", "cvfs.trusted", url)
        push = project.cvfs("push", check=False)
        assert push.returncode == 2, (url, push.stderr)
        assert why in push.stderr and "hint:" in push.stderr, (url, push.stderr)
        one_error(push.stderr)
    assert sorted(p.name for p in (project.root / ".git/objects").iterdir()) == git_objects_before
    assert sorted(p.name for p in (project.root / "data").iterdir()) == ["a.bin"]
    assert not Path("/proc/objects").exists() and not Path("/objects").exists()


def test_config_values_with_shell_metacharacters_run_nothing(project: Project, tmp_path: Path) -> None:
    """No shell ever sees a configuration value: each is used as a string, or refused."""
    payload = "$(touch PWNED);touch PWNED`touch PWNED`|touch PWNED&&touch PWNED>PWNED"
    weird_archive = tmp_path / f"arch {payload}"
    weird_archive.mkdir()
    settings = {
        "archive.primary.url": weird_archive.as_uri(),
        "archive.secondary.url": f"s3://bucket-{payload}/x",
        "archive.secondary.endpoint": f"http://127.0.0.1:9/{payload}",
        "archive.secondary.profile": payload,
        "scope.prefix": f"data/{payload}",
        "fetch.include": f"data/{payload}",
    }
    for key, value in settings.items():
        project.git("config", "-f", ".cvfs/config", key, value)
    project.cvfs("trust", "--yes")  # approved, so that every value below is really used
    data = rand(5000, 41)
    project.write("data/a.bin", data)
    procs = [
        project.git("add", "-A", check=False),
        project.git("commit", "-q", "-m", "a", check=False),
        project.cvfs("push", check=False),
        project.cvfs("status", check=False),
        project.cvfs("ensure", check=False),
        project.cvfs("reconcile", check=False),
        project.cvfs("doctor", check=False),
        project.git("push", "-q", "origin", "main", check=False),
    ]
    for proc in procs:
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert not list(tmp_path.rglob("PWNED")) and not (Path.home() / "PWNED").exists()
    # The value was taken literally: the object sits in the directory with that odd name.
    h = ref_of(data).hex
    assert (weird_archive / "objects" / h[:2] / h[2:4] / h).read_bytes() == data


def test_a_ten_megabyte_ref_lookalike_is_content_and_a_garbage_shard_is_named(project: Project, tmp_path: Path) -> None:
    # Committed without the filter (as anyone's git could): 10 MB that opens like a ref.
    big = b'{"cvfs":1,"oid":"sha256:' + b"0" * 64 + b'","size":10,"pad":"' + b"A" * (10 << 20) + b'"}\n'
    (tmp_path / "big").write_bytes(big)
    blob = project.git("hash-object", "-w", "--no-filters", str(tmp_path / "big")).stdout.strip()
    project.git("update-index", "--add", "--cacheinfo", f"100644,{blob},data/huge-ref.bin")
    project.git("commit", "-q", "--no-verify", "-m", "huge")
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/huge-ref.bin").read_bytes() == big  # ordinary content, passed through
    git(clone, "cvfs", "trust", "--yes")  # it names no archive: this machine's default, approved here
    for args in (["ensure"], ["status"], ["fsck"], ["reconcile"]):
        proc = git(clone, "cvfs", *args, check=False)
        assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), (args, proc.stderr)
    # A shard that is not JSON at all: every command that reads it names it and stops.
    shard = clone / ".cvfs/index/data.jsonl"
    shard.parent.mkdir(parents=True, exist_ok=True)
    shard.write_bytes(b"\x00\xffnot json at all\n" * 1000)
    for args in (["reconcile"], ["status"], ["push"]):
        proc = git(clone, "cvfs", *args, check=False)
        assert proc.returncode != 0 and "data.jsonl" in proc.stderr and "hint:" in proc.stderr, (args, proc.stderr)
        one_error(proc.stderr)
