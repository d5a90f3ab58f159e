"""resolve, guard, fsck, prune."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.conftest import CloudArchive, Project, new_project, rand


def hexof(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_resolve_gives_agents_everything_about_a_path(project: Project) -> None:
    data = rand(30_000)
    project.write("data/a.bin", data)
    project.commit_all()
    out = json.loads(project.cvfs("resolve", "data/a.bin").stdout)
    h = hexof(data)
    assert out["oid"] == f"sha256:{h}" and out["size"] == 30_000 and out["state"] == "materialized"
    assert out["archives"]["primary"]["url"] == f"{project.archive.as_uri()}/objects/{h[:2]}/{h[2:4]}/{h}"
    assert out["archives"]["primary"]["etag"] and out["archives"]["primary"]["recorded"]
    assert out["cache_path"] is None  # lean cache: the work tree holds the bytes
    missing = project.cvfs("resolve", "data/nope.bin", check=False)
    assert missing.returncode == 1 and "not a managed file" in missing.stderr


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_resolve_on_cloud_archives(kind: str, request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> None:
    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, archive.config())  # type: ignore[arg-type]
    data = rand(20_000, 1)
    project.write("data/a.bin", data)
    project.commit_all()
    out = json.loads(project.cvfs("resolve", "data/a.bin").stdout)
    assert out["archives"]["primary"]["url"].startswith(archive.url + "/objects/")
    assert out["archives"]["primary"]["etag"]


def test_guard_names_what_deleting_would_lose(project: Project) -> None:
    project.write("data/archived.bin", rand(30_000, 1))
    project.write("notes.txt", b"committed\n")
    project.commit_all()
    project.write("data/unarchived.bin", rand(30_000, 2))
    project.git("add", "data/unarchived.bin")
    project.git("commit", "-q", "--no-verify", "-m", "not archived")
    project.write("data/scratch.tmp", b"never committed")
    safe = json.loads(project.cvfs("guard", "--json", "data/archived.bin", "notes.txt").stdout)
    assert safe == {"ok": True, "checked": "archives", "safe": ["data/archived.bin", "notes.txt"], "at_risk": {}}
    risky = project.cvfs("guard", "--json", "data", check=False)
    assert risky.returncode == 1
    at_risk = json.loads(risky.stdout)["at_risk"]
    assert set(at_risk) == {"data/unarchived.bin", "data/scratch.tmp"}
    project.write("data/archived.bin", rand(30_000, 3))  # edited: the archive has the old bytes only
    assert project.cvfs("guard", "data/archived.bin", check=False).returncode == 1
    # a managed path git holds as a plain blob (below minSize): git has its bytes while it is unchanged
    project.write("data/small.csv", b"a,b\n")
    project.commit_all("small")
    assert json.loads(project.cvfs("guard", "--json", "data/small.csv").stdout)["safe"] == ["data/small.csv"]
    project.write("data/small.csv", b"a,b\n1,2\n")
    edited = project.cvfs("guard", "--json", "data/small.csv", check=False)
    assert edited.returncode == 1
    assert json.loads(edited.stdout)["at_risk"] == {
        "data/small.csv": "changed since it was committed (git holds a plain blob), and not in any archive"
    }


def test_fsck_finds_corrupt_cache_objects_and_bad_refs(project: Project) -> None:
    project.git("config", "cvfs.cache.keep", "true")
    data = rand(30_000, 4)
    project.write("data/a.bin", data)
    project.commit_all()
    assert json.loads(project.cvfs("fsck", "--json").stdout)["ok"]
    obj = project.root / ".git/cvfs/objects" / hexof(data)[:2] / hexof(data)[2:4] / hexof(data)
    obj.chmod(0o644)
    obj.write_bytes(b"Z" + data[1:])
    project.write("data/bad.bin", b'{"cvfs":1,"oid":"sha256:xyz","size":1}\n')
    project.git("add", "data/bad.bin")
    out = project.cvfs("fsck", "--json", check=False)
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["corrupt_objects"] == [hexof(data)] and "data/bad.bin" in report["bad_refs"]
    project.cvfs("fsck", "--repair", check=False)
    assert not obj.exists()


def test_prune_drops_only_what_the_primary_is_shown_to_hold(project: Project) -> None:
    project.git("config", "cvfs.cache.keep", "true")
    archived, changed, local = rand(30_000, 5), rand(30_000, 6), rand(30_000, 7)
    project.write("data/a.bin", archived)
    project.write("data/b.bin", changed)
    project.commit_all()
    project.write("data/c.bin", local)
    project.git("add", "data/c.bin")  # in the cache, never archived
    # The archive's copy now holds other bytes of the same size, its mtime put back: its etag
    # (size and mtime) is what was recorded, and only its bytes tell.
    damaged = project.archive_path(hexof(changed))
    before = damaged.stat()
    damaged.chmod(0o644)
    damaged.write_bytes(bytes([changed[0] ^ 1]) + changed[1:])
    os.utime(damaged, ns=(before.st_atime_ns, before.st_mtime_ns))
    dry = json.loads(project.cvfs("prune", "--dry-run", "--json").stdout)
    assert dry["dropped"] == [hexof(archived)] and set(dry["kept"]) == {hexof(changed), hexof(local)}
    cache = project.root / ".git/cvfs/objects"
    assert any(cache.rglob(hexof(archived)))  # a dry run drops nothing
    project.cvfs("prune")
    assert not any(cache.rglob(hexof(archived)))
    assert any(cache.rglob(hexof(changed))) and any(cache.rglob(hexof(local)))


def test_prune_drops_rows_below_min_size_for_paths_now_plain(project: Project) -> None:
    small = rand(3000, 8)
    project.write("data/s.bin", small)
    project.write("data/big.bin", rand(30_000, 9))
    project.commit_all()
    project.git("config", "-f", ".cvfs/config", "scope.minSize", "10KB")
    project.git("add", "--renormalize", "data/s.bin")  # now below minSize: a plain blob
    project.git("commit", "-q", "--no-verify", "-m", "s is plain now")
    rows = (project.root / ".cvfs/index/data.jsonl").read_text()
    assert "data/s.bin" in rows
    dry = json.loads(project.cvfs("prune", "--dry-run", "--json").stdout)
    assert dry["rows_dropped"] == ["data/s.bin"]
    assert "data/s.bin" in (project.root / ".cvfs/index/data.jsonl").read_text()
    project.cvfs("prune")
    rows = (project.root / ".cvfs/index/data.jsonl").read_text()
    assert "data/s.bin" not in rows and "data/big.bin" in rows
