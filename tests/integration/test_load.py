"""Load: objects pushed to and fetched from the S3 and Azure servers at concurrency 16, every
one verified, with the process's memory and open file descriptors watched throughout.

The suite runs 2,000 objects per archive (about a minute for both); CI (`.ci/run`) then runs
GIT_CVFS_LOAD_OBJECTS=10000, about five minutes on two cores."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, git, new_project, watched

OBJECTS = int(os.environ.get("GIT_CVFS_LOAD_OBJECTS", "2000"))
CONCURRENCY = 16
# A Python process with boto3 or the Azure SDK loaded sits at about 55 MB; bookkeeping
# grows by about 3 KB per object (75-85 MB at 10,000). File bytes are never held.
RSS_LIMIT_MB = 150
FD_LIMIT = 4 * CONCURRENCY + 32  # a connection and a file per worker, and then some


def payload(i: int) -> bytes:
    """Distinct, incompressible, 1-3 KiB."""
    seed = hashlib.sha256(i.to_bytes(4, "little")).digest()
    return (seed * 96)[: 1024 + (i % 2048)]


@pytest.mark.slow
def test_many_objects_pushed_and_fetched_in_bounded_memory_and_descriptors(cloud: CloudArchive, tmp_path: Path) -> None:
    project = new_project(
        tmp_path, {**cloud.config(), "scope.minSize": "1KB", "transfer.concurrency": str(CONCURRENCY)}
    )
    files = {f"data/d{i // 100:03d}/f{i:05d}.bin": payload(i) for i in range(OBJECTS)}
    for name, data in files.items():
        path = project.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", f"{OBJECTS} files, not archived yet")

    push = watched(project.root, "push", "--json")
    assert push.returncode == 0, push.stderr
    report = json.loads(push.stdout)
    assert report["ok"] and report["uploaded"] == OBJECTS
    print(f"{cloud.kind} push: {push.seconds:.1f} s, peak RSS {push.peak_rss_mb:.0f} MB, peak fds {push.peak_fds}")
    assert push.peak_rss_mb < RSS_LIMIT_MB and push.peak_fds < FD_LIMIT
    project.git("push", "-q", "origin", "main")  # the pre-push hook: nothing left to upload

    lazy = project.root.parent / "lazy"
    git(project.root.parent, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "config", "-f", ".cvfs/config", "transfer.concurrency", str(CONCURRENCY))
    ensure = watched(lazy, "ensure", "--json")
    assert ensure.returncode == 0, ensure.stderr
    assert len(json.loads(ensure.stdout)["materialized"]) == OBJECTS
    print(
        f"{cloud.kind} ensure: {ensure.seconds:.1f} s, peak RSS {ensure.peak_rss_mb:.0f} MB, peak fds {ensure.peak_fds}"
    )
    assert ensure.peak_rss_mb < RSS_LIMIT_MB and ensure.peak_fds < FD_LIMIT
    # Every byte came back as it went in (each download was also hashed before use).
    assert all((lazy / name).read_bytes() == data for name, data in files.items())
    assert git(lazy, "status", "--porcelain").stdout == ""
