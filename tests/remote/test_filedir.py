"""The directory archive's batch store: what is in place afterwards, per object."""

from __future__ import annotations

import hashlib
from pathlib import Path

from git_cvfs.errors import ArchiveError, IntegrityError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.remote.archive import AlreadyStored, ObjectInfo, object_key
from git_cvfs.remote.filedir import FileArchive


def source(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    oid = hashlib.sha256(data).hexdigest()
    path = tmp_path / "src" / oid
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return object_key(oid), path


def test_put_files_stores_each_object_and_leaves_no_staged_copy(tmp_path: Path) -> None:
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "archive").as_uri()))
    (tmp_path / "archive").mkdir()
    new_key, new_src = source(tmp_path, b"new object" * 100)
    raced_key, raced_src = source(tmp_path, b"raced" * 100)
    damaged_key, damaged_src = source(tmp_path, b"damaged" * 100)
    gone_key, gone_src = source(tmp_path, b"gone" * 100)
    gone_src.unlink()
    lying_key, lying_src = source(tmp_path, b"lying" * 100)
    lying_src.write_bytes(b"other" * 100)  # the local copy changed since it was filed under its oid
    # A racing writer stored something under the key after our check: left there, for the caller to verify.
    raced_dest = tmp_path / "archive" / raced_key
    raced_dest.parent.mkdir(parents=True)
    raced_dest.write_bytes(b"raced" * 100)
    raced_inode = raced_dest.stat().st_ino
    # A copy of the wrong size, which head() reported: replaced.
    damaged_dest = tmp_path / "archive" / damaged_key
    damaged_dest.parent.mkdir(parents=True)
    damaged_dest.write_bytes(b"short")
    damaged_info = ObjectInfo(damaged_key, 5, '"x"')

    results = archive.put_files(
        [
            (new_key, new_src, 1000, None),
            (raced_key, raced_src, 500, None),
            (gone_key, gone_src, 400, None),
            (damaged_key, damaged_src, 700, damaged_info),
            (lying_key, lying_src, 500, None),
        ]
    )

    assert [type(r) for r in results] == [ObjectInfo, AlreadyStored, ArchiveError, ObjectInfo, IntegrityError]
    assert (tmp_path / "archive" / new_key).read_bytes() == b"new object" * 100
    assert raced_dest.read_bytes() == b"raced" * 100 and raced_dest.stat().st_ino == raced_inode  # theirs, not ours
    assert damaged_dest.read_bytes() == b"damaged" * 100
    assert not (tmp_path / "archive" / gone_key).exists()
    error = results[2]
    assert isinstance(error, ArchiveError) and "cannot write" in error.message
    assert [(r.key, r.size) for r in results if isinstance(r, ObjectInfo)] == [(new_key, 1000), (damaged_key, 700)]
    assert not (tmp_path / "archive" / lying_key).exists()  # bytes that are not the object never get its name
    assert list((tmp_path / "archive" / "tmp").iterdir()) == []


def test_put_files_refuses_a_missing_archive_directory(tmp_path: Path) -> None:
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "unmounted").as_uri()))
    key, src = source(tmp_path, b"data")
    try:
        archive.put_files([(key, src, 4, None)])
    except ArchiveError as exc:
        assert "does not exist" in exc.message
    else:
        raise AssertionError("stored into a directory that was not there")
    assert not (tmp_path / "unmounted").exists()


def test_open_object_reads_what_is_stored_and_none_when_it_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "archive").as_uri()))
    key, src = source(tmp_path, b"stored bytes")
    archive.put_file(key, src, 12, None)
    f = archive.open_object(key)
    assert f is not None
    with f:
        assert f.read(100) == b"stored bytes"
    assert archive.open_object(object_key("0" * 64)) is None
    unmounted = FileArchive(ArchiveSettings("other", (tmp_path / "unmounted").as_uri()))
    assert unmounted.open_object(key) is None
    assert not (tmp_path / "unmounted").exists()


def cached(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    """An object in a cache laid out as the real one (objects/ab/cd/<oid>), read-only as it files them."""
    oid = hashlib.sha256(data).hexdigest()
    path = tmp_path / "cvfs" / "objects" / oid[:2] / oid[2:4] / oid
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    return object_key(oid), path


def test_a_cache_object_is_linked_not_copied_when_allowed_and_still_hashed(tmp_path: Path) -> None:
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "archive").as_uri()))
    (tmp_path / "archive").mkdir()
    archive.link_from(tmp_path / "cvfs" / "objects")
    key, path = cached(tmp_path, b"linked" * 1000)
    bad_key, bad_path = cached(tmp_path, b"filed under its oid" * 100)
    bad_path.chmod(0o644)
    bad_path.write_bytes(b"then changed in place" * 100)  # the cache lies: never archived as the object
    loose_key, loose_path = source(tmp_path, b"not from the cache" * 100)

    results = archive.put_files(
        [(key, path, 6000, None), (bad_key, bad_path, 1900, None), (loose_key, loose_path, 1800, None)]
    )

    assert [type(r) for r in results] == [ObjectInfo, IntegrityError, ObjectInfo]
    stored = tmp_path / "archive" / key
    assert stored.stat().st_ino == path.stat().st_ino  # one copy of the bytes on this disk
    assert not (tmp_path / "archive" / bad_key).exists()
    assert (tmp_path / "archive" / loose_key).stat().st_ino != loose_path.stat().st_ino  # copied
    path.unlink()  # the lean cache dropping its name leaves the archive's
    assert stored.read_bytes() == b"linked" * 1000
    assert list((tmp_path / "archive" / "tmp").iterdir()) == []


def test_without_link_from_a_cache_object_is_copied(tmp_path: Path) -> None:
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "archive").as_uri()))
    (tmp_path / "archive").mkdir()
    key, path = cached(tmp_path, b"kept" * 1000)
    assert isinstance(archive.put_files([(key, path, 4000, None)])[0], ObjectInfo)
    assert (tmp_path / "archive" / key).stat().st_ino != path.stat().st_ino
