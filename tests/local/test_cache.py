from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from git_cvfs.errors import IntegrityError, RefError
from git_cvfs.local import cache as cache_module
from git_cvfs.local.cache import BackgroundStore, Cache


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


def test_the_background_store_flushes_each_object_before_it_gets_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The filter's store fsyncs in batches: whatever the batching, no object may be renamed
    into the cache before its own bytes were flushed (a power cut would leave zeros under the
    oid), and settle files the last, partial batch."""
    cache = Cache(tmp_path / "cvfs")
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(a: str | Path, b: str | Path) -> None:
        with lock:
            events.append(("rename", str(a)))
        real_replace(a, b)

    monkeypatch.setattr(cache_module.os, "fsync", fsync)
    monkeypatch.setattr(cache_module.os, "replace", replace)
    store = BackgroundStore(cache, workers=3, in_flight=4, batch=4)
    blobs = [f"object {i}".encode() * 500 for i in range(10)]  # two full batches and a partial one
    for i, data in enumerate(blobs):
        spool = cache.spool()
        spool.write(data)
        store.submit(spool, spool.hexdigest(), sync=True, label=f"f{i}")
    assert store.close() == []
    for data in blobs:
        assert cache.object_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    renamed = {name for kind, name in events if kind == "rename"}  # tried again after a mkdir
    assert len(renamed) == len(blobs)
    for name in renamed:
        before = events[: events.index(("rename", name))]
        assert ("fsync", name) in before, events
    assert list(cache.tmp.iterdir()) == []


def test_a_large_spool_written_on_its_own_thread_holds_exactly_what_was_given(tmp_path: Path) -> None:
    # Past _WRITER_FROM the bytes go to a writer thread in batches: pieces of every size, a
    # memoryview among them, must land in order, and the hash must be of those same bytes.
    cache = Cache(tmp_path / "cvfs")
    pieces = [bytes([i % 251]) * n for i, n in enumerate([1, 65516, 3 << 20, 7, 65516] * 6)]
    pieces[5] = memoryview(bytearray(pieces[5]))  # type: ignore[call-overload]
    data = b"".join(bytes(p) for p in pieces)
    assert len(data) > cache_module._WRITER_FROM + 2 * cache_module._BATCH
    spool = cache.spool()
    for piece in pieces:
        spool.write(piece)
    assert spool.finish() == hashlib.sha256(data).hexdigest()
    assert spool.path.read_bytes() == data
    assert not _writers()  # the writer is gone once finished


def test_a_spool_writer_failing_fails_the_spool_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cvfs")
    spool = cache.spool()
    spool.write(b"x" * cache_module._WRITER_FROM)  # written here; the writer starts

    def full(fd: int, parts: list[bytes]) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "writev", full)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(64):  # the error comes back at a later hand-over, or at the finish
            spool.write(b"y" * cache_module._BATCH)
        spool.finish()
    spool.discard()
    assert list(cache.tmp.iterdir()) == []
    assert not _writers()
    # every batch taken was given back: the next large spool is not held up
    assert cache_module._queued._value == cache_module._QUEUED // cache_module._BATCH  # type: ignore[attr-defined]


def _writers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cvfs-spool-writer"]
