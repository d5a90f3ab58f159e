"""Memory stays bounded whatever a repository commits in its inventory (invariant 8).

Shards are committed, so anyone may write them: one enormous line, or a million rows. Each
command's own peak resident memory (the kernel's VmHWM of the git-cvfs process) is watched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project, git, rand, watched

LIMIT_MB = 100
HEX = "ab" * 32


def junk_rows(path: Path, count: int) -> None:
    """`count` well-formed rows under data/junk/, in order: what a hostile commit might hold."""
    row = (
        b'{"archives":{"primary":{"etag":"\\"0123456789abcdef0123456789abcdef\\"","key":"objects/ab/ab/%s"}},'
        b'"git":true,"oid":"sha256:%s","path":"data/junk/f%%07d.bin","size":123456}\n' % (HEX.encode(), HEX.encode())
    )
    with open(path, "wb") as f:
        for start in range(0, count, 10_000):
            f.write(b"".join(row % i for i in range(start, min(count, start + 10_000))))


def test_a_row_longer_than_the_cap_is_refused_naming_shard_and_line(project: Project) -> None:
    project.write("data/a.bin", rand(5000, 1))
    project.commit_all()
    shard = project.root / ".cvfs/index/data.jsonl"
    with open(shard, "ab") as f:  # line 2: a 100 MB "row"
        f.write(b'{"archives":{},"git":false,"oid":"sha256:' + HEX.encode() + b'","path":"data/x","size":1,"pad":"')
        chunk = b"A" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write(b'"}\n')
    for args in (["status"], ["reconcile"], ["fsck"], ["ensure", "data"], ["ls-files"]):
        run = watched(project.root, *args)
        said = run.stdout + run.stderr  # fsck reports what it found on stdout; the others stop with an error
        assert run.returncode != 0, args
        assert ".cvfs/index/data.jsonl:2" in said and "more than 65536 bytes" in said, (args, said)
        assert "Traceback" not in said and ("hint:" in run.stderr or args == ["fsck"])
        assert run.peak_rss_mb < LIMIT_MB, (args, run.peak_rss_mb)
    # --from-blob rebuilds from what can be read, skipping the line: the repair path works too.
    fixed = watched(project.root, "reconcile", "--from-blob")
    assert fixed.peak_rss_mb < LIMIT_MB and "Traceback" not in fixed.stderr
    assert shard.stat().st_size < 1000 and watched(project.root, "status").returncode == 0


@pytest.mark.slow
def test_a_million_rows_are_read_and_rewritten_in_bounded_memory(project: Project) -> None:
    project.write("data/a.bin", rand(5000, 2))
    project.commit_all()
    junk = project.root / ".cvfs/index/data__junk.jsonl"
    junk_rows(junk, 1_000_000)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "a million rows")

    status = watched(project.root, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["totals"]["materialized"]["files"] == 1
    assert status.peak_rss_mb < LIMIT_MB, status.peak_rss_mb

    # The pre-commit hook rewrites the shard of a new file under data/junk/: a row at a time.
    project.write("data/junk/new.bin", rand(5000, 3))
    project.git("add", "data/junk/new.bin")
    hook = watched(project.root, "hook-impl", "pre-commit")
    assert hook.returncode == 0, hook.stderr
    assert hook.peak_rss_mb < LIMIT_MB, hook.peak_rss_mb
    staged = git(project.root, "cat-file", "-s", ":.cvfs/index/data__junk.jsonl").stdout
    assert int(staged) > junk.stat().st_size - 1000  # the million rows are still there, plus one
    project.git("commit", "-q", "--no-verify", "-m", "one more")

    audit = watched(project.root, "reconcile", "--fix-index", "--json")
    report = json.loads(audit.stdout)
    assert audit.returncode == 1 and audit.peak_rss_mb < LIMIT_MB, audit.peak_rss_mb
    assert len(report["findings"]) == 10_000 and report["findings_omitted"] == 1_000_000 - 10_000
    assert {f["kind"] for f in report["findings"]} == {"stale_row"}
    rows = junk.read_bytes().splitlines()
    assert [json.loads(r)["path"] for r in rows] == ["data/junk/new.bin"]  # every stale row gone, the real one kept
    assert watched(project.root, "reconcile").returncode == 0
