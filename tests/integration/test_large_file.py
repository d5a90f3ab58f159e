"""A 1 GiB file cleaned and smudged in bounded memory: the peak RSS of the filter, not time."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from git_cvfs.local import cache
from tests.conftest import CVFS, Project

GIB = 1 << 30
LIMIT_KB = 100 * 1024  # 100 MB

WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "a") as f:
    f.write(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(rc)
"""


def write_big(path: Path) -> str:
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB, not compressible by accident
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(GIB // len(block)):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    return cache.sha256_file(path)[0]


def peak_kb(log: Path) -> int:
    values = [int(v) for v in log.read_text().split()]
    log.unlink()
    print(f"peak RSS {max(values) / 1024:.1f} MB")
    return max(values)


@pytest.mark.slow
def test_one_gib_clean_and_smudge_in_bounded_memory(project: Project, tmp_path: Path) -> None:
    wrapper = tmp_path / "rss.py"
    wrapper.write_text(WRAPPER)
    log = tmp_path / "rss.log"
    measured = f"{shlex.quote(sys.executable)} {shlex.quote(str(wrapper))} {shlex.quote(str(log))} {shlex.quote(CVFS)}"
    project.git("config", "filter.cvfs.process", f"{measured} filter-process")

    big = project.root / "data/big.bin"
    big.parent.mkdir()
    digest = write_big(big)

    project.git("add", "-A")
    assert peak_kb(log) < LIMIT_KB, "clean of 1 GiB"
    assert project.blob(":data/big.bin").startswith(b'{"cvfs":1,"oid":"sha256:' + digest.encode())
    project.git("commit", "-q", "-m", "big")
    log.unlink(missing_ok=True)  # commit may re-run clean; measured above

    # Smudge through git (streamMax raised): our filter streams the object from the cache.
    big.unlink()
    project.git("-c", "cvfs.smudge.streamMax=2GB", "checkout", "--", "data/big.bin")
    assert peak_kb(log) < LIMIT_KB, "smudge of 1 GiB through the filter"
    assert sha256_file(big) == digest

    # The default: too large for git's buffer, written out of band by the post-checkout hook.
    big.unlink()
    project.git("checkout", "--", "data/big.bin")
    assert sha256_file(big) == digest
    assert project.git("status", "--porcelain").stdout == ""

    # ensure, downloading from the archive with an empty cache, in bounded memory.
    big.unlink()
    project.git("checkout", "--", "data/big.bin", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    for obj in (project.root / ".git/cvfs/objects").rglob(digest):
        obj.unlink()
    subprocess.run(
        [sys.executable, str(wrapper), str(log), CVFS, "ensure", "data/big.bin"], cwd=project.root, check=True
    )
    assert peak_kb(log) < LIMIT_KB, "ensure (download + write) of 1 GiB"
    assert sha256_file(big) == digest
    assert project.git("status", "--porcelain").stdout == ""
