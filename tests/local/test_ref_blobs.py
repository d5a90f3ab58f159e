"""The remembered blob -> ref answers are believed only when the ref hashes to the blob id."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from git_cvfs.core.model.refscan import small_blobs
from git_cvfs.format.ref import Ref
from git_cvfs.local import ref_blobs
from git_cvfs.local.git import Repo
from git_cvfs.local.ref_blobs import FILE, known_ref_blobs, remember_ref_blobs
from tests.conftest import tmpfs


def blob_of(root: Path, data: bytes) -> str:
    return (
        subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=root, input=data, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


def test_only_lines_that_hash_to_their_blob_are_believed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    repo = Repo.discover(root)
    refs = [Ref(hashlib.sha256(bytes([i])).hexdigest(), 1000 + i) for i in range(3)]
    blobs = [blob_of(root, r.encode()) for r in refs]
    plain = blob_of(root, b"not a ref\n")
    sizes, contents = small_blobs(repo, [*blobs, plain])
    assert contents[blobs[0]] == refs[0].encode() and sizes[plain] == 10
    assert set(known_ref_blobs(repo.cvfs_dir, set(blobs))) == set(blobs)  # remembered, the plain one not
    # a planted line: blob 1's id named with another object; and a torn line
    lines = (repo.cvfs_dir / FILE).read_bytes().replace(refs[1].hex.encode(), refs[2].hex.encode())
    (repo.cvfs_dir / FILE).write_bytes(lines + blobs[0][:10].encode())
    assert set(known_ref_blobs(repo.cvfs_dir, set(blobs))) == {blobs[0], blobs[2]}
    _, again = small_blobs(repo, blobs)  # git answers for the one not believed
    assert again[blobs[1]] == refs[1].encode()


def test_a_non_canonical_ref_is_not_remembered(tmp_path: Path) -> None:
    cvfs_dir = tmp_path / "cvfs"
    odd = b'{"cvfs":1, "oid":"sha256:' + b"a" * 64 + b'","size":3}\n'
    remember_ref_blobs(cvfs_dir, {"0" * 40: odd})
    assert not (cvfs_dir / FILE).exists()


def test_past_its_limit_the_file_keeps_the_working_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines for old versions pile up (every checkout appends what it handed out); past the
    limit the file is written afresh with what was just looked up and what is new, not
    dropped (a repository with more refs than the limit would otherwise never keep any)."""
    root = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    repo = Repo.discover(root)
    refs = [Ref(hashlib.sha256(bytes([i])).hexdigest(), 1000 + i) for i in range(40)]
    blobs = [blob_of(root, r.encode()) for r in refs]
    small_blobs(repo, blobs[:30])  # old versions
    monkeypatch.setattr(ref_blobs, "MAX_BYTES", (repo.cvfs_dir / FILE).stat().st_size - 1)
    small_blobs(repo, blobs[20:40])  # ten known, ten new: over the limit, so written afresh
    kept = known_ref_blobs(repo.cvfs_dir, set(blobs))
    assert set(kept) == set(blobs[20:40])
    assert len((repo.cvfs_dir / FILE).read_bytes().splitlines()) == 20  # each line once


def test_a_rewrite_a_full_disk_refuses_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        refs = {f"{i:040x}": Ref(hashlib.sha256(bytes([i])).hexdigest(), 1000 + i).encode() for i in range(40)}
        remember_ref_blobs(disk, dict(list(refs.items())[:20]))
        before = (disk / FILE).read_bytes()
        monkeypatch.setattr(ref_blobs, "MAX_BYTES", 100)  # the next write rewrites the file
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # the disk full to its last byte
        with contextlib.suppress(OSError):
            while os.write(fd, b"\xff" * 4096):
                pass
        os.close(fd)
        remember_ref_blobs(disk, dict(list(refs.items())[20:]))  # a cache: the failure is not raised
        assert (disk / FILE).read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", FILE]
