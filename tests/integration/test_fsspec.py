"""cvfs:// through fsspec's own entry points (the `fsspec.specs` registration), with pandas and
pyarrow reading a parquet file, against a directory archive and moto's S3 server."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, git, new_project, rand, ref_of


def parquet_bytes(rows: int, seed: int) -> bytes:
    import io

    import pandas as pd

    frame = pd.DataFrame({"id": range(rows), "value": [(i * seed) % 997 for i in range(rows)]})
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue()


def lazy_clone(project: Project, tmp_path: Path) -> Path:
    """A clone whose managed files stay refs and whose cache is empty."""
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    return tmp_path / "lazy"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_pandas_reads_parquet_through_cvfs_inside_a_repository(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config: dict[str, str] = {}
    if kind == "s3":
        archive: CloudArchive = request.getfixturevalue("s3_archive")
        config = archive.config()
    project = new_project(tmp_path, config)
    table = parquet_bytes(5_000, 7)
    project.write("data/tables/t.parquet", table)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy_clone(project, tmp_path)
    before = snapshot(clone)
    assert before["data/tables/t.parquet"].startswith(b'{"')  # a ref, not the data

    code = (
        "import pandas\n"
        # use_threads=False: pyarrow aborts at exit now and then after reading through any
        # Python file object, fsspec's memory:// as well (apache/arrow#50482, #34314).
        "df = pandas.read_parquet('cvfs://data/tables/t.parquet', use_threads=False)\n"
        "print(len(df), int(df['value'].sum()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=clone / "data", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["5000", str(sum((i * 7) % 997 for i in range(5_000)))]
    assert snapshot(clone) == before  # the work tree was not written


def test_ls_info_and_ranged_reads_at_an_explicit_repository_and_revision(tmp_path: Path) -> None:
    import fsspec

    project = new_project(tmp_path, {})
    old_data, new_data = rand(300_000, 1), rand(310_000, 2)
    project.write("data/x.bin", old_data)
    project.write("data/sub/y.bin", rand(50_000, 3))
    project.write("notes.txt", b"plain text in git\n")
    project.commit_all("one")
    old = project.git("rev-parse", "HEAD").stdout.strip()
    project.write("data/x.bin", new_data)
    project.commit_all("two")
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy_clone(project, tmp_path)
    before = snapshot(clone)

    fs = fsspec.filesystem("cvfs", repo=str(clone), rev=old)
    assert sorted(fs.ls("data", detail=False)) == ["data/sub", "data/x.bin"]
    info = fs.info("data/x.bin")
    assert info["size"] == 300_000 and info["type"] == "file" and info["oid"] == ref_of(old_data).oid
    assert fs.info("data/sub")["type"] == "directory"
    assert fs.cat_file("data/x.bin", start=1000, end=1100) == old_data[1000:1100]
    assert fs.cat_file("data/x.bin", start=-10) == old_data[-10:]
    assert fs.cat_file("notes.txt") == b"plain text in git\n"
    with fs.open("data/sub/y.bin") as f:
        f.seek(49_990)
        assert f.read() == rand(50_000, 3)[49_990:]

    # The URL form: [REPO:][REV@]PATH, as fsspec's git:// has it.
    with fsspec.open(f"cvfs://{clone}:main@data/x.bin", "rb") as f:
        assert f.read() == new_data
    assert fsspec.filesystem("cvfs", repo=str(clone)).info("data/x.bin")["size"] == 310_000
    assert snapshot(clone) == before

    with pytest.raises(FileNotFoundError):
        fs.info("data/nope.bin")
    # A bare path is a path, whatever it holds; only a cvfs:// URL carries REPO: and REV@.
    project.write("data/odd:name@v2.bin", rand(20_000, 8))
    project.commit_all("an odd name")
    assert fsspec.filesystem("cvfs", repo=str(project.root)).info("data/odd:name@v2.bin")["size"] == 20_000
    with pytest.raises(OSError) as err:
        fs.open("data/x.bin", "wb")
    assert err.value.errno == errno.EROFS


def test_bytes_an_archive_altered_are_never_returned(tmp_path: Path) -> None:
    import fsspec

    project = new_project(tmp_path, {})
    data = rand(80_000, 9)
    project.write("data/x.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy_clone(project, tmp_path)
    stored = project.archive_path(ref_of(data).hex)
    os.chmod(stored, 0o644)
    stored.write_bytes(rand(80_000, 10))  # the right key and size, other bytes

    fs = fsspec.filesystem("cvfs", repo=str(clone), skip_instance_cache=True)
    with pytest.raises(OSError) as err:
        fs.cat_file("data/x.bin")
    assert err.value.errno == errno.EIO and "do not match" in str(err.value)
    assert not (clone / ".git/cvfs/objects").exists() or not list((clone / ".git/cvfs/objects").rglob(ref_of(data).hex))


def test_an_unknown_revision_is_an_error_that_says_so(tmp_path: Path) -> None:
    import fsspec

    project = new_project(tmp_path, {})
    project.write("data/x.bin", rand(5_000, 1))
    project.commit_all()
    with pytest.raises(Exception, match="no commit 'no-such'") as err:
        fsspec.filesystem("cvfs", repo=str(project.root), rev="no-such")
    assert "git log" in str(getattr(err.value, "hint", ""))


def test_a_budget_keeps_what_cvfs_fetched_within_it(tmp_path: Path) -> None:
    """A data set larger than the disk, read through cvfs:// with a budget: the objects it
    fetched are dropped, least recently opened first, once they hold more than the budget; one
    a reader has open stays until it is closed, and one the cache held before is never dropped.
    (Without a budget every fetched object stayed in the cache.)"""
    import fsspec

    project = new_project(tmp_path, {})
    files = {f"data/f{i}.bin": rand(100_000, 30 + i) for i in range(5)}
    project.publish(files)
    clone = lazy_clone(project, tmp_path)
    objects = clone / ".git/cvfs/objects"

    def cached() -> set[str]:
        return {p.name for p in objects.rglob("*") if p.is_file()} if objects.exists() else set()

    git(clone, "cvfs", "fetch", "data/f4.bin")  # in the cache before: never dropped
    fs = fsspec.filesystem("cvfs", repo=str(clone), budget="250KB", skip_instance_cache=True)
    held = fs.open("data/f0.bin")  # open all along: kept while it is
    for name in ("data/f1.bin", "data/f2.bin", "data/f3.bin", "data/f4.bin"):
        assert fs.cat_file(name) == files[name]
    assert held.read() == files["data/f0.bin"]
    hexes = {name: ref_of(data).hex for name, data in files.items()}
    # fetched: f0 (open), f1, f2, f3 = 400 KB > 250 KB: the least recently opened go first
    assert cached() == {hexes["data/f0.bin"], hexes["data/f3.bin"], hexes["data/f4.bin"]}
    held.close()
    assert fs.cat_file("data/f1.bin") == files["data/f1.bin"]  # fetched again, verified
    assert hexes["data/f0.bin"] not in cached() and hexes["data/f4.bin"] in cached()
    fetched = cached() - {hexes["data/f4.bin"]}
    assert sum(len(files[n]) for n, h in hexes.items() if h in fetched) <= 250 * 1024
    with pytest.raises(Exception, match="invalid budget"):
        fsspec.filesystem("cvfs", repo=str(clone), budget="lots", skip_instance_cache=True)
