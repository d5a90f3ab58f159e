"""Large files go to disk while they are written (local/writeback.py): the kernel takes the
request, and the writers hand it each 16 MiB as it is written, whatever the chunk size."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from git_cvfs.local import writeback
from git_cvfs.local.cache import Cache
from git_cvfs.local.worktree import copy_fd

MIB = 1 << 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_kernel_takes_the_request(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(2 * MIB))
    fd = os.open(path, os.O_RDONLY)  # as the cache opens a downloaded file to start it
    try:
        assert writeback.start_writeback(fd, 0, MIB)
        assert writeback.start_writeback(fd, MIB, MIB)
        assert writeback.start_all(fd)
    finally:
        os.close(fd)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def record(fd: int, offset: int, nbytes: int) -> bool:
        calls.append((offset, nbytes))
        return True

    monkeypatch.setattr(writeback, "start_writeback", record)
    return calls


def test_a_spool_starts_each_16_mib_as_it_comes(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    cache = Cache(tmp_path / "cvfs")
    data = os.urandom(40 * MIB + 5)
    chunks = [data[i : i + 3 * MIB // 2] for i in range(0, len(data), 3 * MIB // 2)]  # not aligned to 16 MiB
    hex_digest, size = cache.put_stream(chunks)
    assert cache.object_path(hex_digest).read_bytes() == data and size == len(data)
    assert started == [(0, 16 * MIB + MIB // 2), (16 * MIB + MIB // 2, 16 * MIB + MIB // 2)]  # the tail: fsync's
    small = Cache(tmp_path / "small")
    small.put_stream([os.urandom(MIB)] * 3)
    assert len(started) == 2  # a small object: nothing asked


def test_a_copy_starts_each_16_mib_as_it_is_made(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(40 * MIB)
    src.write_bytes(data)
    with open(src, "rb") as s, open(dst, "wb") as d:
        copy_fd(s.fileno(), d.fileno())
    assert dst.read_bytes() == data
    assert started == [(0, 16 * MIB), (16 * MIB, 16 * MIB)]


def test_a_copy_into_a_directory_archive_starts_each_16_mib(tmp_path: Path, started: list[tuple[int, int]]) -> None:
    """The copy made when the archive is on another filesystem (no hard link), hashed as it goes."""
    import hashlib

    from git_cvfs.remote.filedir import _copy_hashing

    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(33 * MIB)
    src.write_bytes(data)
    digest, written = _copy_hashing(src, dst, len(data), fsync=True)
    assert dst.read_bytes() == data and written == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert started == [(0, 16 * MIB), (16 * MIB, 16 * MIB)]
