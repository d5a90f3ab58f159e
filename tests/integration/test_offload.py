"""offload: nothing is replaced by its ref unless the primary archive provably holds it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, new_project, rand, ref_bytes


def test_dry_run_lists_sizes_and_urls_and_changes_nothing(project: Project) -> None:
    a, b = rand(30_000, 1), rand(20_000, 2)
    project.write("data/a.bin", a)
    project.write("data/b.bin", b)
    project.commit_all()
    before = {p: (project.root / p).stat() for p in ("data/a.bin", "data/b.bin")}
    out = json.loads(project.cvfs("offload", "--dry-run", "--json", "data").stdout)
    assert out["dry_run"] and out["would_free"] == 50_000
    h = hashlib.sha256(a).hexdigest()
    assert {
        "path": "data/a.bin",
        "size": 30_000,
        "archive_url": f"{project.archive.as_uri()}/objects/{h[:2]}/{h[2:4]}/{h}",
        "offloaded": False,
        "refused": None,
        "registered": False,
    } in out["files"]
    for p, st in before.items():
        assert (project.root / p).stat().st_mtime_ns == st.st_mtime_ns
    text = project.cvfs("offload", "--dry-run", "data")
    assert "would offload data/a.bin" in text.stdout and "would free 48.8 KiB in 2 file(s)" in text.stdout


def test_a_flag_that_would_change_nothing_is_refused(project: Project) -> None:
    data = rand(30_000, 4)
    project.write("data/a.bin", data)
    project.commit_all()
    for flags, said in ((["--offline"], "--offline goes with --dry-run"), (["--apply"], "--apply goes with --budget")):
        proc = project.cvfs("offload", *flags, "data/a.bin", check=False)
        assert proc.returncode == 2 and f"error: {said}" in proc.stderr and "hint: " in proc.stderr, flags
    assert (project.root / "data/a.bin").read_bytes() == data  # nothing offloaded


def test_offload_replaces_with_the_ref_keeps_status_clean_and_ensure_restores(project: Project) -> None:
    data = rand(40_000, 3)
    project.write("data/a.bin", data)
    project.commit_all()
    project.cvfs("offload", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == ref_bytes(data)
    assert project.git("status", "--porcelain").stdout == ""
    assert project.cvfs("preflight", "data/a.bin", check=False).returncode == 1
    project.cvfs("ensure", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == data


def test_modified_and_unarchived_files_are_refused_by_name(project: Project) -> None:
    project.write("data/mod.bin", rand(30_000, 4))
    project.commit_all()
    project.write("data/mod.bin", rand(30_000, 5))  # same size, other bytes
    project.write("data/new.bin", rand(30_000, 6))
    project.git("add", "data/new.bin")
    project.git("commit", "-q", "--no-verify", "-m", "not archived")
    # The dry run refuses what the real run refuses: it said "would offload data/mod.bin" (the
    # archive holds the committed object; the file holds other bytes of the same size)
    dry = project.cvfs("offload", "--dry-run", "data", check=False)
    assert dry.returncode == 1 and "would free 0 B in 0 file(s)" in dry.stdout, dry
    assert "data/mod.bin: not offloaded: its bytes are not the committed object" in dry.stderr
    assert "data/new.bin: not offloaded" in dry.stderr
    assert "without --dry-run" not in dry.stderr  # nothing it would do: no hint to go and do it
    out = project.cvfs("offload", "data", check=False)
    assert out.returncode == 1
    assert "data/mod.bin: not offloaded" in out.stderr and "data/new.bin: not offloaded" in out.stderr
    assert "push" in out.stderr
    assert (project.root / "data/mod.bin").read_bytes() == rand(30_000, 5)
    assert (project.root / "data/new.bin").read_bytes() == rand(30_000, 6)


def test_a_plain_file_named_by_its_path_is_refused_not_freed_in_silence(project: Project) -> None:
    """`offload data/small.csv` of a file git itself holds (below minSize) said "freed 0 B in 0
    file(s)" and exited 0, as if it had done what was asked. Named by its path, it is now
    refused, saying why; within a directory it is passed over, as small files are."""
    project.write("data/small.csv", b"a,b\n1,2\n")
    project.write("data/big.bin", rand(30_000, 7))
    project.commit_all()
    out = project.cvfs("offload", "data/small.csv", check=False)
    assert out.returncode == 1, out
    assert "error: data/small.csv: not offloaded: git holds its bytes (a plain blob, not a ref)" in out.stderr
    assert "git add --renormalize data/small.csv" in out.stderr
    assert (
        json.loads(project.cvfs("offload", "--dry-run", "--json", "data/small.csv", check=False).stdout)["ok"] is False
    )
    project.cvfs("offload", "data")  # the directory: the large file is freed, the small one passed over
    assert (project.root / "data/big.bin").read_bytes() == ref_bytes(rand(30_000, 7))
    assert (project.root / "data/small.csv").read_bytes() == b"a,b\n1,2\n"


@pytest.mark.parametrize("tamper", ["delete", "overwrite"])
def test_archive_copy_gone_or_changed_is_refused(project: Project, tamper: str) -> None:
    data = rand(30_000, 7)
    project.write("data/a.bin", data)
    project.commit_all()
    obj = project.archive_path(hashlib.sha256(data).hexdigest())
    obj.chmod(0o644)
    if tamper == "delete":
        obj.unlink()
    else:  # other bytes of the same size, mtime put back: the etag (size, mtime) is unchanged
        before = obj.stat()
        obj.write_bytes(bytes([data[0] ^ 1]) + data[1:])
        os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns))
    out = project.cvfs("offload", "data/a.bin", check=False)
    assert out.returncode == 1 and "data/a.bin" in out.stderr
    assert (project.root / "data/a.bin").read_bytes() == data


def test_budget_offloads_least_recently_used_first_and_only_with_apply(project: Project) -> None:
    for i, name in enumerate(("old", "mid", "new")):
        project.write(f"data/{name}.bin", rand(30_000, 10 + i))
    project.commit_all()
    for i, name in enumerate(("old", "mid", "new")):
        t = 1_700_000_000 + i * 1000
        os.utime(project.root / f"data/{name}.bin", (t, t))
    plan = json.loads(project.cvfs("offload", "--budget", "40000", "--json").stdout)
    assert plan["dry_run"] and [f["path"] for f in plan["files"]] == ["data/old.bin", "data/mid.bin"]
    assert (project.root / "data/old.bin").stat().st_size == 30_000
    project.cvfs("offload", "--budget", "40000", "--apply")
    assert (project.root / "data/old.bin").stat().st_size < 1024
    assert (project.root / "data/mid.bin").stat().st_size < 1024
    assert (project.root / "data/new.bin").stat().st_size == 30_000
    assert project.git("status", "--porcelain").stdout == ""


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_offload_on_cloud_archives(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, archive.config())
    data = rand(60_000, 20)
    project.write("data/a.bin", data)
    project.commit_all()
    project.cvfs("offload", "data/a.bin")
    assert (project.root / "data/a.bin").read_bytes() == ref_bytes(data)
    assert project.git("status", "--porcelain").stdout == ""
    project.cvfs("ensure", "data")
    assert (project.root / "data/a.bin").read_bytes() == data
