"""The git workflow against real servers: moto's S3 server and Azurite, over HTTP on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, git, new_project, rand, ref_of
from tests.servers import AZURITE_ACCOUNT, FaultProxy, Rule


def key_of(data: bytes) -> str:
    h = ref_of(data).hex
    return f"team/objects/{h[:2]}/{h[2:4]}/{h}"


def read_object(archive: CloudArchive, key: str) -> bytes | None:
    if archive.kind == "s3":
        import boto3
        from botocore.exceptions import ClientError

        try:
            obj = boto3.client("s3", endpoint_url=archive.endpoint, region_name="us-east-1").get_object(
                Bucket="cvfs-test", Key=key
            )
        except ClientError:
            return None
        return obj["Body"].read()  # type: ignore[no-any-return]
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    container = archive.url.split("/")[3]
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    try:
        return client.get_blob_client(container, key).download_blob().readall()  # type: ignore[no-any-return]
    except ResourceNotFoundError:
        return None


def write_object(archive: CloudArchive, key: str, data: bytes) -> None:
    if archive.kind == "s3":
        import boto3

        boto3.client("s3", endpoint_url=archive.endpoint, region_name="us-east-1").put_object(
            Bucket="cvfs-test", Key=key, Body=data
        )
        return
    from azure.storage.blob import BlobServiceClient

    container = archive.url.split("/")[3]
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    client.get_blob_client(container, key).upload_blob(data, overwrite=True)


def test_whole_workflow_on_a_cloud_archive(cloud: CloudArchive, tmp_path: Path) -> None:
    project = new_project(tmp_path, cloud.config())
    big, other = rand(3 << 20, 1), rand(20_000, 2)  # 3 MiB: multipart/block uploads on both SDKs
    project.write("data/big.bin", big)
    project.write("data/other.bin", other)
    project.commit_all()
    assert read_object(cloud, key_of(big)) == big
    row = json.loads(project.blob("HEAD:.cvfs/index/data.jsonl").decode().splitlines()[0])
    assert row["archives"]["primary"]["etag"]
    project.git("push", "-q", "origin", "main")

    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/big.bin").read_bytes() == big
    assert git(clone, "status", "--porcelain").stdout == ""

    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    assert (lazy / "data/big.bin").read_bytes() == ref_of(big).encode()
    git(lazy, "cvfs", "ensure", "data/big.bin")
    assert (lazy / "data/big.bin").read_bytes() == big
    assert git(lazy, "status", "--porcelain").stdout == ""

    git(clone, "checkout", "-q", "-b", "v2")
    (clone / "data/big.bin").write_bytes(rand(40_000, 3))
    git(clone, "commit", "-q", "-am", "v2")
    git(clone, "checkout", "-q", "main")
    assert (clone / "data/big.bin").read_bytes() == big
    git(clone, "checkout", "-q", "v2")
    assert (clone / "data/big.bin").read_bytes() == rand(40_000, 3)
    assert read_object(cloud, key_of(rand(40_000, 3))) == rand(40_000, 3)


def test_overwritten_object_in_the_bucket_never_reaches_the_work_tree(cloud: CloudArchive, tmp_path: Path) -> None:
    project = new_project(tmp_path, cloud.config())
    data = rand(50_000, 4)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    write_object(cloud, key_of(data), b"X" * len(data))
    clone_proc = git(tmp_path, "clone", "-q", str(project.remote), "c")
    clone = tmp_path / "c"
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert "do not match" in clone_proc.stderr
    ensure = git(clone, "cvfs", "ensure", "data/a.bin", check=False)
    assert ensure.returncode == 1 and key_of(data)[len("team/") :] in ensure.stderr and cloud.url in ensure.stderr
    assert (clone / "data/a.bin").read_bytes() == ref_of(data).encode()


def test_s3_primary_down_reads_fall_back_to_azure_secondary(
    s3_archive: CloudArchive, azure_archive: CloudArchive, tmp_path: Path
) -> None:
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        config = {**s3_archive.config(endpoint=proxy.url), **azure_archive.config("secondary")}
        project = new_project(tmp_path, config)
        data = rand(100_000, 5)
        project.write("data/a.bin", data)
        project.commit_all()
        assert read_object(s3_archive, key_of(data)) == data
        assert read_object(azure_archive, key_of(data)) == data
        archives = json.loads(project.blob("HEAD:.cvfs/index/data.jsonl"))["archives"]
        assert set(archives) == {"primary", "secondary"} and all(a["etag"] for a in archives.values())
        project.git("push", "-q", "origin", "main")

        proxy.rules.append(Rule("*", ".", "503", times=-1))  # the primary is down for good
        clone = project.clone(tmp_path / "clone")
        assert (clone / "data/a.bin").read_bytes() == data
        assert git(clone, "status", "--porcelain").stdout == ""
    finally:
        proxy.stop()


def test_push_archive_fills_the_secondary_from_the_primary(
    s3_archive: CloudArchive, azure_archive: CloudArchive, tmp_path: Path
) -> None:
    project = new_project(tmp_path, s3_archive.config())
    data = rand(30_000, 6)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    for key, value in azure_archive.config("secondary").items():
        project.git("config", "-f", ".cvfs/config", key, value)
    project.cvfs("trust", "--yes")  # the user approves the secondary they just added
    lazy_cache = project.root / ".git/cvfs/objects"
    for obj in lazy_cache.rglob(ref_of(data).hex):
        obj.unlink()  # not in the cache: must come from the primary
    out = json.loads(project.cvfs("push", "--archive", "secondary", "--json").stdout)
    assert out["ok"] and out["uploaded"] == 1
    assert read_object(azure_archive, key_of(data)) == data


@pytest.fixture
def faulty(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CloudArchive, FaultProxy, str]]:
    """A cloud archive reached through the fault proxy: (archive, proxy, endpoint to configure)."""
    kind = request.param
    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    upstream = archive.endpoint or ""
    base = upstream.rsplit("/", 1)[0] if kind == "azure" else upstream
    proxy = FaultProxy(base).start()
    endpoint = proxy.url
    if kind == "azure":
        endpoint = f"{proxy.url}/{AZURITE_ACCOUNT}"
        conn = os.environ["AZURE_STORAGE_CONNECTION_STRING"].replace(base, proxy.url)
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    yield archive, proxy, endpoint
    proxy.stop()


@pytest.mark.parametrize("faulty", ["s3", "azure"], indirect=True)
def test_transient_faults_are_survived(faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    data = rand(200_000, 7)
    project.write("data/a.bin", data)
    proxy.rules += [Rule("PUT", "objects", "503", times=1), Rule("PUT", "objects", "reset", times=1)]
    project.commit_all()
    assert read_object(archive, key_of(data)) == data
    project.git("push", "-q", "origin", "main")
    proxy.rules += [Rule("GET", "objects", "500", times=1), Rule("GET", "objects", "503", times=1)]
    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/a.bin").read_bytes() == data
    assert sum(r.hits for r in proxy.rules) == 4


@pytest.mark.parametrize("faulty", ["s3", "azure"], indirect=True)
def test_persistent_faults_end_in_one_clear_error_and_nothing_half_written(
    faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path
) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    data = rand(100_000, 8)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    proxy.rules.append(Rule("GET", "objects", "503", times=-1))
    ensure = git(lazy, "cvfs", "ensure", "data", check=False)
    assert ensure.returncode == 1 and "Traceback" not in ensure.stderr
    assert archive.url in ensure.stderr and "hint:" in ensure.stderr
    assert (lazy / "data/a.bin").read_bytes() == ref_of(data).encode()
    assert list((lazy / "data").iterdir()) == [lazy / "data/a.bin"]  # no temp files left
    tmp = lazy / ".git/cvfs/tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    # Uploads failing for good: the commit goes through with a warning; push is refused.
    proxy.rules.append(Rule("*", ".", "reset", times=-1))
    project.write("data/b.bin", rand(100_000, 9))
    project.git("add", "-A")
    commit = project.git("commit", "-m", "b", check=False)
    assert commit.returncode == 0 and "warning: committing without archiving" in commit.stderr
    push = project.git("push", "origin", "main", check=False)
    assert push.returncode != 0 and "push refused" in push.stderr


@pytest.mark.parametrize("faulty", ["s3", "azure"], indirect=True)
def test_ensure_with_the_lean_cache_downloads_straight_into_the_work_tree(
    faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path
) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    one, shared = rand(200_000, 21), rand(150_000, 22)
    project.write("data/one.bin", one)
    project.write("data/shared-a.bin", shared)
    project.write("data/shared-b.bin", shared)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    # The cache's temporary directory is blocked: a download into the cache would fail here.
    (lazy / ".git/cvfs").mkdir(exist_ok=True)
    (lazy / ".git/cvfs/tmp").write_bytes(b"")
    git(lazy, "cvfs", "ensure", "data/one.bin")
    assert (lazy / "data/one.bin").read_bytes() == one
    assert not list((lazy / ".git/cvfs/objects").rglob(ref_of(one).hex))
    (lazy / ".git/cvfs/tmp").unlink()
    # An object two files need is downloaded once, into the cache, and copied twice.
    proxy.requests.clear()
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/shared-a.bin").read_bytes() == shared == (lazy / "data/shared-b.bin").read_bytes()
    assert len([r for r in proxy.requests if r.startswith("GET") and ref_of(shared).hex in r]) == 1
    assert not list((lazy / ".git/cvfs/objects").rglob(ref_of(shared).hex))  # the lean cache dropped it
    assert git(lazy, "status", "--porcelain").stdout == ""
    assert sorted(p.name for p in (lazy / "data").iterdir()) == ["one.bin", "shared-a.bin", "shared-b.bin"]


def _no_temp_files(clone: Path) -> None:
    assert sorted(p.name for p in (clone / "data").iterdir()) == ["a.bin"]
    tmp = clone / ".git/cvfs/tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize("faulty", ["s3", "azure"], indirect=True)
def test_truncated_or_altered_downloads_never_reach_the_work_tree(
    faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path
) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    data = rand(300_000, 11)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    # Once each: fetched again and checked out intact.
    proxy.rules += [Rule("GET", "objects", "corrupt", times=1), Rule("GET", "objects", "truncate", times=1)]
    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/a.bin").read_bytes() == data
    assert [r.hits for r in proxy.rules] == [1, 1]
    # Every time: one clear error, the ref stays, nothing unverified is kept anywhere.
    for action in ("corrupt", "truncate"):
        lazy = project.clone(tmp_path / f"lazy-{action}", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
        proxy.rules[:] = [Rule("GET", "objects", action, times=-1)]
        ensure = git(lazy, "cvfs", "ensure", "data", check=False)
        assert ensure.returncode == 1 and "Traceback" not in ensure.stderr, ensure.stderr
        assert ensure.stderr.count("error:") == 1 and "hint:" in ensure.stderr
        assert (lazy / "data/a.bin").read_bytes() == ref_of(data).encode()
        _no_temp_files(lazy)
        assert not list((lazy / ".git/cvfs/objects").rglob(ref_of(data).hex))
        proxy.rules.clear()
        git(lazy, "cvfs", "ensure", "data")  # the archive answers properly again: done
        assert (lazy / "data/a.bin").read_bytes() == data
        # Downloaded straight into the work tree: the lean cache never held a copy.
        assert not list((lazy / ".git/cvfs/objects").rglob(ref_of(data).hex))
        assert (lazy / "data/a.bin").read_bytes() == data


@pytest.mark.parametrize("faulty", ["s3", "azure"], indirect=True)
def test_truncated_or_altered_uploads_are_caught_and_sent_again(
    faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path
) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    data = rand(300_000, 12)
    project.write("data/a.bin", data)
    # Altered once on the way: S3 stores it (moto checks no Content-MD5; the etag gives it
    # away), Azure refuses it (MD5 mismatch). Either way it is sent again and lands intact.
    proxy.rules.append(Rule("PUT", "objects", "corrupt-request", times=1))
    project.commit_all()
    assert proxy.rules[0].hits == 1
    assert read_object(archive, key_of(data)) == data
    # Cut short on the way (with a Content-Length to match): S3 stores half of it, which the
    # size check catches, and it is sent again; Azure refuses the request (the length is
    # signed), so the commit warns and the pre-push hook uploads it. Nothing short is kept.
    second = rand(300_000, 14)
    project.write("data/c.bin", second)
    proxy.rules[:] = [Rule("PUT", "objects", "truncate-request", times=1)]
    project.commit_all()
    assert proxy.rules[0].hits == 1
    assert read_object(archive, key_of(second)) in (None, second)
    project.git("push", "-q", "origin", "main")
    assert read_object(archive, key_of(second)) == second
    # Altered every time: never recorded as archived, and push is refused.
    other = rand(300_000, 13)
    project.write("data/b.bin", other)
    proxy.rules[:] = [Rule("PUT", "objects", "corrupt-request", times=-1)]
    project.git("add", "-A")
    commit = project.git("commit", "-m", "b", check=False)
    assert commit.returncode == 0 and "warning: committing without archiving" in commit.stderr
    assert "damaged in transit" in commit.stderr or "differ from what was sent" in commit.stderr
    assert read_object(archive, key_of(other)) is None
    push = project.git("push", "origin", "main", check=False)
    assert push.returncode != 0 and "push refused" in push.stderr
    proxy.rules.clear()
    project.git("push", "-q", "origin", "main")
    assert read_object(archive, key_of(other)) == other


@pytest.mark.parametrize("faulty", ["azure"], indirect=True)
def test_a_body_cut_off_part_way_is_fetched_on_from_where_it_stopped(
    faulty: tuple[CloudArchive, FaultProxy, str], tmp_path: Path
) -> None:
    archive, proxy, endpoint = faulty
    project = new_project(tmp_path, archive.config(endpoint=endpoint))
    data = rand(1 << 20, 13)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    proxy.rules.append(Rule("GET", "objects", "truncate", times=1))  # half the body, then the connection closes
    proxy.requests.clear()
    proxy.headers.clear()
    git(lazy, "cvfs", "ensure", "data")
    assert (lazy / "data/a.bin").read_bytes() == data
    gets = [h for r, h in zip(proxy.requests, proxy.headers, strict=True) if r.startswith("GET") and "objects" in r]
    # The first GET asks for the whole blob; the second only for what had not arrived.
    assert len(gets) == 2 and "x-ms-range" not in {k.lower() for k in gets[0]}
    resumed = {k.lower(): v for k, v in gets[1].items()}["x-ms-range"]
    assert resumed.startswith("bytes=") and 0 < int(resumed[6:].rstrip("-")) <= len(data) // 2


@pytest.mark.parametrize(
    ("kind", "size"), [("s3", 200_000), ("azure", 200_000), ("azure", 9 << 20)], ids=["s3", "azure-put", "azure-blocks"]
)
def test_an_upload_never_replaces_a_blob_that_appeared_meanwhile(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, size: int
) -> None:
    from git_cvfs.local.config import ArchiveSettings
    from git_cvfs.remote.archive import AlreadyStored, open_archive

    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    data = rand(size, 14)
    path = tmp_path / "object"
    path.write_bytes(data)
    key = key_of(data).removeprefix("team/")
    backend = open_archive(ArchiveSettings("primary", archive.url, endpoint=archive.endpoint, region="us-east-1"))
    # Listed as absent, then someone else's blob lands under the key: the upload must not replace it.
    write_object(archive, key_of(data), b"someone else's")
    with pytest.raises(AlreadyStored):
        backend.put_file(key, path, size, None)
    assert read_object(archive, key_of(data)) == b"someone else's"
    # Known to be there (and wrong): replaced, and what is stored is the object.
    info = backend.put_file(key, path, size, backend.head(key))
    assert info.size == size and read_object(archive, key_of(data)) == data


def test_blocks_an_earlier_upload_left_uncommitted_do_not_stop_a_new_one(
    azure_archive: CloudArchive, tmp_path: Path
) -> None:
    import uuid

    from azure.storage.blob import BlobServiceClient

    from git_cvfs.local.config import ArchiveSettings
    from git_cvfs.remote.archive import open_archive

    data = rand(9 << 20, 15)
    path = tmp_path / "object"
    path.write_bytes(data)
    container = azure_archive.url.split("/")[3]
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    # What a killed upload through the SDK leaves: blocks staged under its ids, none committed.
    left = client.get_blob_client(container, key_of(data))
    left.stage_block(f"{uuid.uuid4().int:048d}", b"from an upload that was killed")
    backend = open_archive(ArchiveSettings("primary", azure_archive.url, endpoint=azure_archive.endpoint))
    info = backend.put_file(key_of(data).removeprefix("team/"), path, len(data), None)
    assert info.size == len(data) and read_object(azure_archive, key_of(data)) == data
