"""worktree.budget: a standing limit on the disk the work tree's materialized files use, kept
after checkout, merge and ensure by offloading (with offload's checks) the least recently used;
and the order ensure fetches in."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Project, git, new_project, rand, ref_of


def state_of(clone: Path) -> dict[str, str]:
    out = git(clone, "cvfs", "ls-files").stdout
    return {line.split()[-1]: line.split()[0] for line in out.splitlines()}


def materialized(clone: Path) -> set[str]:
    return {path for path, state in state_of(clone).items() if state == "materialized"}


def five_shards(project: Project) -> dict[str, bytes]:
    files = {f"data/shard-{i}.bin": rand(1_000_000, 10 + i) for i in range(5)}
    for rel, data in files.items():
        project.write(rel, data)
    project.commit_all("five shards")
    project.git("push", "-q", "origin", "HEAD:main")
    return files


def age(clone: Path, rel: str, seconds_ago: float) -> None:
    """As if the file was last read (and written) this long ago."""
    st = os.stat(clone / rel)
    when = st.st_mtime - seconds_ago
    os.utime(clone / rel, (when, when))


def test_a_clone_keeps_within_the_budget_and_status_shows_it(project: Project, tmp_path: Path) -> None:
    files = five_shards(project)
    clone = tmp_path / "clone"
    proc = git(tmp_path, "clone", "-q", "-c", "cvfs.worktree.budget=2500KB", str(project.remote), "clone")
    assert "worktree.budget 2.4 MiB: offloaded 3 least recently used file(s), 2.9 MiB; 1.9 MiB in use" in proc.stderr
    kept = materialized(clone)
    assert len(kept) == 2
    for rel in kept:
        assert (clone / rel).read_bytes() == files[rel]
    for rel in set(files) - kept:
        assert (clone / rel).read_bytes() == ref_of(files[rel]).encode()  # offloaded: its ref
    assert git(clone, "status", "--porcelain").stdout == ""
    status = git(clone, "cvfs", "status").stdout
    assert "worktree.budget 1.9 MiB of 2.4 MiB in use" in status
    doc = json.loads(git(clone, "cvfs", "status", "--json").stdout)
    assert doc["worktree_budget"] == {"budget": 2_560_000, "used": 2_000_000}


def test_ensure_keeps_what_it_was_asked_for_and_offloads_the_least_recently_used(
    project: Project, tmp_path: Path
) -> None:
    files = five_shards(project)
    clone = project.clone(tmp_path / "clone")
    for i, rel in enumerate(sorted(files)):
        age(clone, rel, 1000 - i * 100)  # shard-0 least recently used, shard-4 most
    git(clone, "config", "cvfs.worktree.budget", "3MB")
    git(clone, "cvfs", "offload", "data/shard-2.bin")
    assert materialized(clone) == set(files) - {"data/shard-2.bin"}  # 4 MB: over, until something runs

    proc = git(clone, "cvfs", "ensure", "data/shard-2.bin")
    # Asked for: stays. Then the least recently used go until the rest fit: shard-0 and shard-1.
    assert materialized(clone) == {"data/shard-2.bin", "data/shard-3.bin", "data/shard-4.bin"}
    assert "offloaded 2 least recently used file(s)" in proc.stderr
    doc = json.loads(git(clone, "cvfs", "ensure", "data/shard-3.bin", "--json").stdout)
    assert doc["budget"]["used"] == 3_000_000 and doc["budget"]["offloaded"] == []


def test_what_the_archive_cannot_show_it_holds_is_never_offloaded(project: Project, tmp_path: Path) -> None:
    files = five_shards(project)
    clone = project.clone(tmp_path / "clone")
    for rel in files:
        age(clone, rel, 1000)
    lost = "data/shard-0.bin"
    project.archive_path(ref_of(files[lost]).hex).unlink()  # the archive lost it: this copy is the only one
    git(clone, "config", "cvfs.worktree.budget", "1MB")
    git(clone, "cvfs", "offload", "data/shard-4.bin")

    proc = git(clone, "cvfs", "ensure", "data/shard-4.bin")  # exit 0: ensure did what it was asked
    assert (clone / lost).read_bytes() == files[lost]
    assert materialized(clone) == {lost, "data/shard-4.bin"}  # every other one went in its place
    assert "warning: the work tree is" in proc.stderr and "over worktree.budget" in proc.stderr
    assert "hint:" in proc.stderr


def test_a_checkout_and_a_merge_keep_within_the_budget(project: Project, tmp_path: Path) -> None:
    five_shards(project)
    project.git("checkout", "-q", "-b", "more")
    extra = {f"data/extra-{i}.bin": rand(800_000, 40 + i) for i in range(3)}
    for rel, data in extra.items():
        project.write(rel, data)
    project.commit_all("three more")
    project.git("push", "-q", "origin", "more")
    clone = project.clone(tmp_path / "clone")
    git(clone, "config", "cvfs.worktree.budget", "4MB")
    for rel in materialized(clone):
        age(clone, rel, 1000)

    git(clone, "checkout", "-q", "more")
    used = sum(os.path.getsize(clone / p) for p in materialized(clone))
    assert used <= 4 * 1024 * 1024
    assert {f"data/extra-{i}.bin" for i in range(3)} <= materialized(clone)  # just written: newest

    git(clone, "checkout", "-q", "main")
    git(clone, "merge", "-q", "--ff-only", "more")
    assert sum(os.path.getsize(clone / p) for p in materialized(clone)) <= 4 * 1024 * 1024


def test_a_committed_budget_is_refused_it_is_each_machines_own(project: Project) -> None:
    project.git("config", "-f", ".cvfs/config", "worktree.budget", "1KB")
    proc = project.cvfs("status", check=False)
    assert proc.returncode == 2
    assert "worktree.budget is set in .cvfs/config" in proc.stderr
    assert "git config cvfs.worktree.budget SIZE" in proc.stderr


def test_ensure_fetches_the_named_file_first_then_small_before_large(tmp_path: Path) -> None:
    project = new_project(tmp_path, {"transfer.concurrency": "1"})
    sizes = {"a.bin": 700_000, "b.bin": 5_000, "c.bin": 300_000, "d.bin": 90_000, "e.bin": 1_200_000}
    for name, size in sizes.items():
        project.write(f"data/{name}", rand(size, size))
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    lazy = tmp_path / "lazy"
    trace = tmp_path / "trace.log"

    git(lazy / "data", "cvfs", "ensure", "c.bin", ".", env={"GIT_CVFS_TRACE": str(trace)})
    by_hex = {ref_of(rand(size, size)).hex: name for name, size in sizes.items()}
    order = []
    for line in trace.read_text().splitlines():
        if " download_to " in line or " read_range " in line:
            name = next((n for h, n in by_hex.items() if h in line), None)
            if name and name not in order:
                order.append(name)
    assert order == ["c.bin", "b.bin", "d.bin", "a.bin", "e.bin"]
    assert all((lazy / "data" / name).read_bytes() == rand(size, size) for name, size in sizes.items())


def test_a_file_that_cannot_go_is_replaced_by_the_next_least_recently_used(project: Project, tmp_path: Path) -> None:
    files = five_shards(project)
    clone = project.clone(tmp_path / "clone")
    for i, rel in enumerate(sorted(files)):
        age(clone, rel, 1000 - i * 100)  # shard-0 least recently used
    lost = "data/shard-0.bin"
    project.archive_path(ref_of(files[lost]).hex).unlink()
    git(clone, "config", "cvfs.worktree.budget", "4000000")
    git(clone, "cvfs", "offload", "data/shard-4.bin")
    git(clone, "cvfs", "ensure", "data/shard-4.bin")
    # shard-0 cannot go (no archive holds it); shard-1, the next least recently used, goes instead.
    assert materialized(clone) == {lost, "data/shard-2.bin", "data/shard-3.bin", "data/shard-4.bin"}
