"""`git cvfs fetch --rev REV | --recent N | --all`: the cache filled for other revisions, the
work tree untouched; a branch named as a path, or a revision that does not exist, is an error."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.conftest import Project, git, rand, ref_of


def cached(clone: Path) -> set[str]:
    objects = clone / ".git" / "cvfs" / "objects"
    return {p.name for p in objects.rglob("*") if p.is_file()} if objects.exists() else set()


def history(project: Project, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """main: old.bin (later deleted), m.bin; branch feature: f.bin, sub/g.bin; branch other: o.bin."""
    data = {name: rand(30_000 + n * 1000, n) for n, name in enumerate(["old", "m", "f", "g", "o"])}
    project.write("data/old.bin", data["old"])
    project.commit_all("old")
    project.git("rm", "-q", "data/old.bin")
    project.write("data/m.bin", data["m"])
    project.commit_all("main")
    project.git("checkout", "-q", "-b", "other")
    project.write("data/o.bin", data["o"])
    project.commit_all("other")
    time.sleep(1.1)  # committer dates one second apart: --recent goes by them
    project.git("checkout", "-q", "-b", "feature", "main")
    project.write("data/f.bin", data["f"])
    project.write("data/sub/g.bin", data["g"])
    project.commit_all("feature")
    project.git("checkout", "-q", "main")
    project.git("push", "-q", "origin", "main", "other", "feature")
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    clone = tmp_path / "lazy"
    shutil.rmtree(clone / ".git" / "cvfs" / "objects", ignore_errors=True)
    return clone, data


def hexes(data: dict[str, bytes], *names: str) -> set[str]:
    return {ref_of(data[n]).hex for n in names}


def test_fetch_rev_fills_the_cache_for_that_revision_only(project: Project, tmp_path: Path) -> None:
    clone, data = history(project, tmp_path)
    before = (clone / "data/m.bin").read_bytes()
    out = git(clone, "cvfs", "fetch", "--rev", "origin/feature")
    assert "3 object(s) in the cache" in out.stderr
    assert cached(clone) == hexes(data, "m", "f", "g")  # not other's o.bin, nor old history
    assert (clone / "data/m.bin").read_bytes() == before == ref_of(data["m"]).encode()  # left alone
    assert not (clone / "data/f.bin").exists()


def test_fetch_rev_with_a_path_and_json(project: Project, tmp_path: Path) -> None:
    clone, data = history(project, tmp_path)
    doc = json.loads(git(clone, "cvfs", "fetch", "--rev", "origin/feature", "data/sub", "--json").stdout)
    assert doc["ok"] and doc["fetched"] == ["origin/feature:data/sub/g.bin"]
    assert cached(clone) == hexes(data, "g")


def test_fetch_rev_reads_pathspecs_as_git_does(project: Project, tmp_path: Path) -> None:
    """Paths for another revision's tree are matched here, not by git: an exclusion takes paths
    away (it was read as a path named ':!...'), a path in no revision named is an error (it
    fetched nothing and exited 0), and paths are read from the current directory."""
    clone, data = history(project, tmp_path)
    git(clone, "cvfs", "fetch", "--rev", "origin/feature", ":!data/sub")
    assert cached(clone) == hexes(data, "m", "f")
    git(clone / "data", "cvfs", "fetch", "--rev", "origin/feature", "sub/")  # data/sub/, from data/
    assert cached(clone) == hexes(data, "m", "f", "g")
    nothing = git(clone, "cvfs", "fetch", "--rev", "origin/feature", "data/nope.bin", check=False)
    assert nothing.returncode == 1 and "'data/nope.bin' did not match" in nothing.stderr, nothing.stderr
    assert "hint:" in nothing.stderr


def test_fetch_recent_and_all(project: Project, tmp_path: Path) -> None:
    clone, data = history(project, tmp_path)
    git(clone, "cvfs", "fetch", "--recent", "1")  # origin/feature has the newest commit
    assert hexes(data, "f", "g") <= cached(clone) and not hexes(data, "o", "old") & cached(clone)
    git(clone, "cvfs", "fetch", "--all")
    assert cached(clone) == hexes(data, "old", "m", "f", "g", "o")  # old.bin: deleted, still in history


def test_a_branch_named_as_a_path_and_a_missing_revision_are_errors(project: Project, tmp_path: Path) -> None:
    clone, _ = history(project, tmp_path)
    git(clone, "branch", "-q", "feature", "origin/feature")
    as_path = git(clone, "cvfs", "fetch", "feature", check=False)
    assert as_path.returncode == 1
    assert "'feature' is a revision, not a path" in as_path.stderr
    assert "hint: to fill the cache for that revision: git cvfs fetch --rev feature" in as_path.stderr
    missing = git(clone, "cvfs", "fetch", "--rev", "no-such-branch", check=False)
    assert missing.returncode == 1 and "no commit 'no-such-branch'" in missing.stderr
    assert cached(clone) == set()
    both = git(clone, "cvfs", "fetch", "--all", "--rev", "main", check=False)
    assert both.returncode == 2


def test_fetch_rev_in_a_partial_clone_reads_the_revision_s_refs_in_one_request(
    project: Project, tmp_path: Path
) -> None:
    # `git clone --filter=blob:none`: the refs of another revision are not here, and listing its
    # files with their sizes had git fetch each one on its own request.
    versions = {f"data/f{i}.bin": rand(20_000, 40 + i) for i in range(8)}
    for name, data in versions.items():
        project.write(name, data)
    project.commit_all("old")
    for name in versions:
        project.write(name, rand(20_000, 90))
    project.commit_all("new")
    project.git("push", "-q", "origin", "main")
    git(project.remote, "config", "uploadpack.allowFilter", "true")
    git(tmp_path, "clone", "-q", "--filter=blob:none", project.remote.as_uri(), "partial")
    clone = tmp_path / "partial"
    packs = len(list((clone / ".git/objects/pack").glob("*.promisor")))
    git(clone, "cvfs", "fetch", "--rev", "HEAD~1", "data")
    assert cached(clone) >= {ref_of(data).hex for data in versions.values()}
    assert len(list((clone / ".git/objects/pack").glob("*.promisor"))) - packs == 1
