"""`git cvfs ensure --target-root DIR` writes the data under another directory (a scratch
disk), verified, leaving the work tree and the index alone; `--source NAME` reads one archive."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import Project, git, new_project, rand, ref_of


def two_archive_project(tmp_path: Path) -> tuple[Project, Path]:
    secondary = tmp_path / "archive2"
    secondary.mkdir()
    project = new_project(tmp_path, {"archive.secondary.url": secondary.as_uri()})
    return project, secondary


def lazy(project: Project, tmp_path: Path) -> Path:
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    clone = tmp_path / "lazy"
    git(clone, "cvfs", "trust", "--yes")
    shutil.rmtree(clone / ".git" / "cvfs" / "objects", ignore_errors=True)
    return clone


def test_target_root_writes_verified_data_elsewhere_and_leaves_the_work_tree(project: Project, tmp_path: Path) -> None:
    files = {"data/a.bin": rand(200_000, 1), "data/sub/b.bin": rand(30_000, 2)}
    for rel, data in files.items():
        project.write(rel, data)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy(project, tmp_path)
    index_before = (clone / ".git" / "index").read_bytes()
    scratch = tmp_path / "scratch"

    out = git(clone / "data", "cvfs", "ensure", "--target-root", str(scratch), ".")
    assert "wrote 2 file(s) under" in out.stderr
    for rel, data in files.items():
        assert (scratch / rel).read_bytes() == data
        assert (clone / rel).read_bytes() == ref_of(data).encode()  # still a ref here
    assert (clone / ".git" / "index").read_bytes() == index_before
    assert git(clone, "status", "--porcelain").stdout == ""
    again = json.loads(git(clone, "cvfs", "ensure", "--target-root", str(scratch), "--json").stdout)
    assert sorted(again["already_materialized"]) == sorted(files) and again["materialized"] == []

    inside = git(clone, "cvfs", "ensure", "--target-root", str(clone / "out"), check=False)
    assert inside.returncode == 2 and "inside the work tree" in inside.stderr


def test_source_reads_only_the_named_archive(tmp_path: Path) -> None:
    project, secondary = two_archive_project(tmp_path)
    data = rand(100_000, 3)
    project.write("data/x.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    project.cvfs("push", "--archive", "secondary")
    key = ref_of(data).hex
    project.archive_path(key).unlink()  # the primary lost it; the secondary has it
    assert (secondary / "objects" / key[:2] / key[2:4] / key).exists()
    clone = lazy(project, tmp_path)

    only_primary = git(clone, "cvfs", "ensure", "--source", "primary", "data/x.bin", check=False)
    assert only_primary.returncode == 1 and "data/x.bin" in only_primary.stderr
    assert (clone / "data/x.bin").read_bytes() == ref_of(data).encode()
    git(clone, "cvfs", "ensure", "--source", "secondary", "data/x.bin")
    assert (clone / "data/x.bin").read_bytes() == data
    unknown = git(clone, "cvfs", "ensure", "--source", "tertiary", check=False)
    assert unknown.returncode == 2 and "no archive named 'tertiary'" in unknown.stderr


def test_bytes_an_archive_altered_never_reach_the_target(project: Project, tmp_path: Path) -> None:
    data = rand(80_000, 4)
    project.write("data/x.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy(project, tmp_path)
    stored = project.archive_path(ref_of(data).hex)
    os.chmod(stored, 0o644)
    stored.write_bytes(rand(80_000, 5))
    scratch = tmp_path / "scratch"
    proc = git(clone, "cvfs", "ensure", "--target-root", str(scratch), check=False)
    assert proc.returncode == 1 and "data/x.bin" in proc.stderr
    assert not (scratch / "data/x.bin").exists()
    assert [p for p in scratch.rglob("*") if p.is_file()] == []  # no temporary file left behind either


def test_files_new_under_the_target_root_take_the_umask_as_git_would(project: Project, tmp_path: Path) -> None:
    """A scratch directory a team shares (umask 002): the files written there are the group's
    to replace, as the files git checks out would be."""
    project.write("data/a.bin", rand(20_000, 9))
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    clone = lazy(project, tmp_path)
    old = os.umask(0o002)
    try:
        git(clone, "cvfs", "ensure", "--target-root", str(tmp_path / "scratch"))
    finally:
        os.umask(old)
    assert (tmp_path / "scratch/data/a.bin").stat().st_mode & 0o777 == 0o664
