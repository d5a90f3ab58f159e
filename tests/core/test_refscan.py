"""Reading many small blobs in one git call: every body lands with its own name."""

from __future__ import annotations

import subprocess
from pathlib import Path

from git_cvfs.core.model.refscan import read_blobs, small_blobs
from git_cvfs.format.ref import MAX_REF_BYTES
from git_cvfs.local.git import Repo


def store(root: Path, data: bytes) -> str:
    out = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=root, input=data, capture_output=True, check=True)
    return out.stdout.decode().strip()


def test_small_blobs_sizes_all_and_reads_only_the_small(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    repo = Repo.discover(tmp_path)
    bodies = {
        "ref": b'{"cvfs":1,"oid":"sha256:' + b"a" * 64 + b'","size":3}\n',
        "empty": b"",
        "lines": b"x missing\n1234 blob 5\n\n",  # looks like cat-file's own headers
        "limit": b"z" * MAX_REF_BYTES,
        "large": b"y" * (MAX_REF_BYTES + 1),
    }
    ids = {name: store(tmp_path, data) for name, data in bodies.items()}
    absent = "0123456789abcdef0123456789abcdef01234567"

    sizes, contents = small_blobs(repo, [*ids.values(), absent, ids["ref"]])

    assert sizes == {ids[name]: len(data) for name, data in bodies.items()}
    assert contents == {ids[name]: bodies[name] for name in ("ref", "empty", "lines", "limit")}


def test_read_blobs_skips_a_missing_name_and_keeps_reading(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    repo = Repo.discover(tmp_path)
    first, second = store(tmp_path, b"first\n"), store(tmp_path, b"second")
    absent = "0123456789abcdef0123456789abcdef01234567"

    assert read_blobs(repo, [first, absent, second]) == {first: b"first\n", second: b"second"}
