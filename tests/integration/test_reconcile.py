"""reconcile: each kind of drift, planted, must be reported; --fix-index and --from-blob repair rows."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, new_project, rand


def kinds(project: Project, *args: str) -> set[tuple[str, str]]:
    proc = project.cvfs("reconcile", "--json", *args, check=False)
    report = json.loads(proc.stdout)
    assert (proc.returncode == 0) == report["ok"]
    return {(f["kind"], f["path"]) for f in report["findings"]}


def hexof(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def settled(project: Project) -> Project:
    for i, name in enumerate(("a", "b", "c", "d")):
        project.write(f"data/{name}.bin", rand(20_000, i))
    project.commit_all()
    assert kinds(project) == set()
    return project


def test_clean_repository_has_no_drift(settled: Project) -> None:
    out = settled.cvfs("reconcile")
    assert "checked 4 path(s): no drift (archives asked for size and etag; --verify hashes their copies)" in out.stdout


def test_deleted_object_is_missing_once_no_local_copy_exists(settled: Project) -> None:
    settled.cvfs("offload", "data/a.bin")
    settled.archive_path(hexof(rand(20_000, 0))).unlink()
    assert ("missing_in_archive", "data/a.bin") in kinds(settled)
    settled.archive_path(hexof(rand(20_000, 1))).unlink()  # b is still materialized here
    assert ("pending_upload", "data/b.bin") in kinds(settled)


def test_overwritten_object_is_size_or_etag_drift(settled: Project) -> None:
    bobj = settled.archive_path(hexof(rand(20_000, 1)))
    bobj.chmod(0o644)
    bobj.write_bytes(b"short")
    cobj = settled.archive_path(hexof(rand(20_000, 2)))
    cobj.chmod(0o644)
    cobj.write_bytes(b"X" * 20_000)
    found = kinds(settled)
    assert ("size_drift", "data/b.bin") in found and ("etag_drift", "data/c.bin") in found


def test_stale_row_unindexed_ref_hand_edited_ref_and_modified_file(settled: Project) -> None:
    settled.git("rm", "-q", "data/d.bin")
    settled.git("commit", "-q", "--no-verify", "-m", "rm without the hook")  # its row stays
    settled.write("data/e.bin", rand(20_000, 9))
    settled.git("add", "data/e.bin")
    settled.git("commit", "-q", "--no-verify", "-m", "no row")
    # Hand-edit a's ref to another object (keeps the old row): the refs disagree with the inventory.
    other = rand(20_000, 42)
    fake = f'{{"cvfs":1,"oid":"sha256:{hexof(other)}","size":20000}}\n'.encode()
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin", "--no-filters"],
            input=fake,
            cwd=settled.root,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    settled.git("update-index", "--cacheinfo", f"100644,{blob},data/a.bin")
    settled.write("data/c.bin", rand(20_000, 77))  # same size, other bytes
    found = kinds(settled)
    assert ("stale_row", "data/d.bin") in found
    assert ("unindexed_ref", "data/e.bin") in found
    assert ("oid_mismatch", "data/a.bin") in found and ("missing_in_archive", "data/a.bin") in found
    assert ("modified", "data/c.bin") in found


def test_fix_index_repairs_rows_and_from_blob_rebuilds_them(settled: Project) -> None:
    settled.git("rm", "-q", "data/d.bin")
    settled.git("commit", "-q", "--no-verify", "-m", "rm without the hook")
    settled.write("data/e.bin", rand(20_000, 9))
    settled.git("add", "data/e.bin")
    settled.git("commit", "-q", "--no-verify", "-m", "no row")
    settled.cvfs("push")
    assert {k for k, _ in kinds(settled)} == {"stale_row", "unindexed_ref"}
    fixed = json.loads(settled.cvfs("reconcile", "--fix-index", "--json", check=False).stdout)["fixed"]
    assert fixed == ["data/d.bin", "data/e.bin"]
    assert kinds(settled) == set()
    shard = settled.root / ".cvfs/index/data.jsonl"
    before = shard.read_bytes()
    shard.write_text("{ this is not an inventory\n")
    assert settled.cvfs("reconcile", check=False).returncode != 0
    settled.cvfs("reconcile", "--from-blob", check=False)
    assert shard.read_bytes() == before
    assert kinds(settled) == set()


def test_orphans_are_listed_only_when_asked(settled: Project) -> None:
    stray = rand(5000, 99)
    path = settled.archive_path(hexof(stray))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stray)
    assert kinds(settled) == set()
    assert any(k == "orphan" and hexof(stray) in p for k, p in kinds(settled, "--orphans"))


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_reconcile_on_cloud_archives_uses_listing_and_finds_drift(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, archive.config())
    for i in range(40):  # more than the listing threshold
        project.write(f"data/f{i:02d}.bin", rand(2000, i))
    project.commit_all()
    assert kinds(project) == set()
    project.cvfs("offload", "data/f00.bin")
    store = project.cvfs("resolve", "data/f00.bin").stdout
    key = json.loads(store)["archives"]["primary"]["url"][len(archive.url) + 1 :]
    if kind == "s3":
        import boto3

        boto3.client("s3", endpoint_url=archive.endpoint, region_name="us-east-1").delete_object(
            Bucket="cvfs-test", Key=f"team/{key}"
        )
    else:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_blob_client(
            archive.url.split("/")[3], f"team/{key}"
        ).delete_blob()
    assert kinds(project) == {("missing_in_archive", "data/f00.bin")}
