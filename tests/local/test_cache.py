from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from git_cvfs.errors import IntegrityError, RefError
from git_cvfs.local.cache import Cache


def test_put_stream_files_object_under_its_hash_read_only(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cvfs")
    data = b"hello" * 1000
    hex_digest, size = cache.put_stream([data[:10], data[10:]])
    assert hex_digest == hashlib.sha256(data).hexdigest() and size == len(data)
    path = cache.object_path(hex_digest)
    assert path.read_bytes() == data and path.stat().st_mode & 0o222 == 0
    assert cache.has(hex_digest, size) and not cache.has(hex_digest, size + 1)
    assert list(cache.tmp.iterdir()) == []


def test_mismatch_stores_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cvfs")
    with pytest.raises(IntegrityError):
        cache.put_stream([b"abc"], expect_hex="0" * 64)
    assert not cache.has("0" * 64)
    assert list(cache.tmp.iterdir()) == []
    assert not cache.objects.exists() or not any(cache.objects.rglob("*0000*"))


def test_hostile_oid_never_builds_a_path(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cvfs")
    with pytest.raises(RefError):
        cache.object_path("../../../../etc/passwd" + "a" * 42)
