"""What real repositories do, on real git: sparse checkouts, paths that sort before .cvfs,
`git mv` out of a tracked pattern, submodules, history views, merges with -X, and every
index format git writes."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.conftest import Project, git, new_project, rand, ref_bytes


def hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_sparse_checkout_without_cvfs_uses_the_committed_settings(project: Project, tmp_path: Path) -> None:
    data = rand(20_000, 1)
    project.write("data/a.bin", data)
    project.write("README", b"top-level file\n")
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", "--sparse", str(project.remote), "sparse")
    sparse = tmp_path / "sparse"
    assert not (sparse / ".cvfs").exists() and not (sparse / "data").exists()
    status = json.loads(git(sparse, "cvfs", "status", "--json").stdout)
    assert status["totals"] == {"sparse": {"files": 1, "bytes": 20_000}}  # not "missing"
    told = git(sparse, "cvfs", "status").stdout.splitlines()
    assert told[:2] == ["1 managed file(s)", "  sparse             1    19.5 KiB"], told
    git(sparse, "sparse-checkout", "add", "data")
    assert (sparse / "data/a.bin").read_bytes() == data  # from the team archive the index's config names
    new = rand(20_000, 2)
    (sparse / "data/b.bin").write_bytes(new)
    git(sparse, "add", "data/b.bin")
    git(sparse, "commit", "-q", "-m", "from a sparse checkout")
    assert project.archive_path(hex_of(new)).read_bytes() == new  # the team archive, not this machine's default
    assert not (Path(git(sparse, "rev-parse", "--git-dir").stdout.strip()) / "x").exists()
    default = tmp_path / "home" / ".local" / "share" / "git-cvfs" / "archive"
    assert not default.exists()
    shard = git(sparse, "show", "HEAD:.cvfs/index/data.jsonl").stdout
    assert '"path":"data/b.bin"' in shard  # the row went into the commit, though .cvfs/ is not checked out
    git(sparse, "push", "-q", "origin", "main")
    assert git(sparse, "cvfs", "reconcile").returncode == 0


@pytest.mark.parametrize("pattern, path", [(".assets/**", ".assets/x.bin"), ("-*.bin", "-x.bin")])
def test_paths_that_sort_before_cvfs_are_materialized_by_a_clone(tmp_path: Path, pattern: str, path: str) -> None:
    project = new_project(tmp_path, {})
    project.cvfs("track", "--", pattern)
    data = rand(20_000, 3)
    project.write(path, data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert (clone / path).read_bytes() == data


def test_git_mv_out_of_a_tracked_pattern_is_refused_and_reported(project: Project) -> None:
    data = rand(20_000, 4)
    project.write("data/b.bin", data)
    project.commit_all()
    (project.root / "other").mkdir()
    project.git("mv", "data/b.bin", "other/b.bin")
    refused = project.git("commit", "-m", "move", check=False)
    assert refused.returncode != 0 and "other/b.bin" in refused.stderr
    assert "git cvfs track 'other/**'" in refused.stderr
    status = json.loads(project.cvfs("status", "--json").stdout)
    assert status["refs_outside_scope"] == ["other/b.bin"]
    project.git("commit", "-q", "--no-verify", "-m", "moved anyway")
    audit = json.loads(project.cvfs("reconcile", "--json", check=False).stdout)
    assert ("ref_outside_scope", "other/b.bin") in {(f["kind"], f["path"]) for f in audit["findings"]}
    project.cvfs("track", "other/**")  # the fix the hint gives
    project.git("add", "other/b.bin", ".gitattributes")
    project.git("commit", "-q", "-m", "track other/")
    assert project.blob("HEAD:other/b.bin") == ref_bytes(data)
    assert json.loads(project.cvfs("status", "--json").stdout)["refs_outside_scope"] == []


def test_a_path_in_a_submodule_is_an_error_naming_the_submodule(project: Project, tmp_path: Path) -> None:
    project.write("data/a.bin", rand(20_000, 5))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    sup = tmp_path / "super"
    git(tmp_path, "init", "-q", str(sup))
    git(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(project.remote), "sub")
    git(sup, "commit", "-q", "-m", "sub")
    for args in (["preflight", "sub/data/a.bin"], ["ensure", "sub/data"], ["offload", "sub/data/a.bin"]):
        out = git(sup, "cvfs", *args, check=False)
        assert out.returncode == 2 and "submodule sub" in out.stderr and "cd sub" in out.stderr, (args, out.stderr)


def test_paths_that_match_nothing_are_errors(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 6))
    project.commit_all()
    for args in (["ensure", "dta/x"], ["preflight", "dta/x"], ["offload", "dta/x"], ["fetch", "dta/x"]):
        out = project.cvfs(*args, check=False)
        assert out.returncode == 1 and "'dta/x' did not match" in out.stderr and "hint:" in out.stderr, args
    assert project.cvfs("ensure", "data/a.bin", "data/*.bin").returncode == 0


def test_history_views_read_no_archive_and_small_text_diffs_as_text(project: Project, tmp_path: Path) -> None:
    versions = [rand(200_000, 10 + i) for i in range(10)]
    for i, data in enumerate(versions):
        project.write("data/big.bin", data)
        project.write("data/notes.txt", f"line one\nversion {i}\n".encode())  # below minSize: a plain blob
        project.commit_all(f"v{i}")
    project.archive.rename(tmp_path / "archive-away")  # any archive read would fail now
    cache = project.root / ".git/cvfs/objects"
    before = sorted(p.name for p in cache.rglob("*") if p.is_file())
    log = project.git("log", "-p", "--", "data/big.bin")
    assert log.stdout.count("+oid sha256:") == 10 and "left as refs" not in log.stderr and log.stderr == ""
    assert all(f"+oid sha256:{hex_of(d)}" in log.stdout for d in versions)
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before  # nothing fetched
    show = project.git("show", "HEAD~3", "--", "data/big.bin")
    assert f"+oid sha256:{hex_of(versions[6])}" in show.stdout and show.stderr == ""
    diff = project.git("diff", "HEAD~5", "HEAD", "--", "data/big.bin")
    assert f"-oid sha256:{hex_of(versions[4])}" in diff.stdout
    text = project.git("log", "-p", "-1", "--", "data/notes.txt").stdout
    assert "-version 8" in text and "+version 9" in text
    assert "data/notes.txt" in project.git("grep", "-I", "line one", "--", "data").stdout
    blame = project.git("blame", "data/notes.txt").stdout
    assert "version 9" in blame


def diverge(project: Project, seed: int) -> bytes:
    """data/a.bin committed, then changed one way on branch `topic` and another on main, which
    is checked out: a conflict waiting. Returns topic's bytes."""
    project.write("data/a.bin", rand(20_000, seed))
    project.commit_all()
    project.git("checkout", "-q", "-b", "topic")
    theirs = rand(20_000, seed + 1)
    project.write("data/a.bin", theirs)
    project.commit_all("topic")
    project.git("checkout", "-q", "main")
    project.write("data/a.bin", rand(20_000, seed + 2))
    project.commit_all("main")
    return theirs


def test_merge_with_x_theirs_takes_their_data_and_the_rows_follow(project: Project) -> None:
    theirs = diverge(project, 20)
    project.git("merge", "-q", "-X", "theirs", "--no-edit", "topic")
    assert (project.root / "data/a.bin").read_bytes() == theirs
    assert project.blob("HEAD:data/a.bin") == ref_bytes(theirs)
    assert project.cvfs("reconcile").returncode == 0


def test_a_merge_conflict_on_data_says_how_to_finish(project: Project) -> None:
    diverge(project, 30)
    merged = project.git("merge", "topic", check=False)
    assert merged.returncode != 0
    # Only the data conflicts: the inventory's rows are records, rewritten from the refs chosen.
    assert project.git("diff", "--name-only", "--diff-filter=U").stdout == "data/a.bin\n"
    project.git("checkout", "--theirs", "--", "data/a.bin")
    project.git("add", "data/a.bin")
    project.git("commit", "-q", "--no-edit")
    assert project.cvfs("reconcile").returncode == 0


@pytest.mark.parametrize("how", ["rebase", "cherry-pick"])
def test_rows_stay_right_after_a_rebase_or_cherry_pick_conflict(project: Project, how: str) -> None:
    theirs = diverge(project, 33)
    if how == "rebase":
        project.git("checkout", "-q", "topic")
        stopped = project.git("rebase", "main", check=False)
    else:
        stopped = project.git("cherry-pick", "topic", check=False)
    assert stopped.returncode != 0
    project.git("checkout", "--theirs", "--", "data/a.bin")  # in a rebase, "theirs" is the commit replayed
    project.git("add", "data/a.bin")
    project.git("-c", "core.editor=true", how, "--continue")
    assert project.blob("HEAD:data/a.bin") == ref_bytes(theirs)
    assert project.cvfs("reconcile").returncode == 0


def test_a_managed_file_replaced_by_a_symlink_loses_its_row(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 36))
    project.write("data/b.bin", rand(20_000, 37))
    project.commit_all()
    (project.root / "data/a.bin").unlink()
    (project.root / "data/a.bin").symlink_to("b.bin")
    project.commit_all("a is a link now")
    assert '"path":"data/a.bin"' not in project.blob("HEAD:.cvfs/index/data.jsonl").decode()
    assert project.cvfs("reconcile").returncode == 0


@pytest.mark.parametrize(
    "setting",
    [
        ("core.splitIndex", "true"),
        ("index.version", "4"),
        ("core.untrackedCache", "true"),
        ("core.fsmonitor", "true"),
        ("index.sparse", "true"),
    ],
)
def test_ensure_and_offload_leave_a_clean_status_with_every_index_format(
    project: Project, tmp_path: Path, setting: tuple[str, str]
) -> None:
    files = {f"data/f{i}.bin": rand(20_000, 40 + i) for i in range(4)}
    for name, data in files.items():
        project.write(name, data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    key, value = setting
    if key == "index.sparse":
        git(lazy, "sparse-checkout", "set", "--cone", "data")
    git(lazy, "config", key, value)
    git(lazy, "update-index", "--really-refresh")  # rewrites the index in that form
    if key == "core.splitIndex":
        git(lazy, "update-index", "--split-index")
        assert list((lazy / ".git").glob("sharedindex.*"))
    time.sleep(1.1)  # the index's second is over: git trusts entries by their stat alone
    git(lazy, "cvfs", "ensure", "data")
    assert all((lazy / n).read_bytes() == d for n, d in files.items())
    assert git(lazy, "status", "--porcelain").stdout == ""
    git(lazy, "cvfs", "offload", "data/f0.bin")
    assert git(lazy, "status", "--porcelain").stdout == ""
    git(lazy, "checkout", "-q", "-b", "elsewhere")  # a checkout does not abort over them
    git(lazy, "cvfs", "ensure", "data")
    assert git(lazy, "status", "--porcelain").stdout == ""


def test_a_git_am_conflict_names_the_stale_row_and_the_fix(project: Project, tmp_path: Path) -> None:
    theirs = diverge(project, 38)
    patches = tmp_path / "patches"
    project.git("format-patch", "-q", "-1", "topic", "-o", str(patches))
    stopped = project.git("am", "-3", str(next(patches.iterdir())), check=False)
    assert stopped.returncode != 0
    project.git("checkout", "--theirs", "--", "data/a.bin")
    project.git("add", "data/a.bin")
    applied = project.git("am", "--continue")
    assert project.blob("HEAD:data/a.bin") == ref_bytes(theirs)
    # git am keeps its index in memory (amending under it makes `am --continue` die with "Dirty
    # index"), so the commit cannot be amended under it: the stale
    # row is named at once, with the fix, which then leaves reconcile clean.
    assert "data/a.bin" in applied.stderr and "reconcile --fix-index" in applied.stderr
    assert project.cvfs("reconcile", check=False).returncode == 1
    project.cvfs("reconcile", "--fix-index", check=False)
    project.git("commit", "-q", "-m", "rows", "--", ".cvfs/index")
    assert project.cvfs("reconcile").returncode == 0


def test_git_archive_fails_loudly_and_git_cvfs_archive_streams_the_data(project: Project, tmp_path: Path) -> None:
    import tarfile
    import zipfile

    project.git("config", "-f", ".cvfs/config", "smudge.streamMax", "30KB")  # big.bin goes out of band
    big, small = rand(60_000, 50), rand(20_000, 51)
    project.write("data/big.bin", big)
    project.write("data/small.bin", small)
    project.write("tool.sh", b"#!/bin/sh\necho hi\n")
    (project.root / "tool.sh").chmod(0o755)
    (project.root / "link").symlink_to("tool.sh")
    project.commit_all()
    plain = project.git("archive", "-o", str(tmp_path / "plain.tar"), "HEAD", check=False)
    assert plain.returncode != 0 and "data/big.bin" in plain.stderr and "git cvfs archive" in plain.stderr
    cache = project.root / ".git/cvfs/objects"
    before = sorted(p.name for p in cache.rglob("*") if p.is_file())
    out = json.loads(project.cvfs("archive", "HEAD", "-o", str(tmp_path / "data.tar"), "--json").stdout)
    assert (out["files"], out["materialized"]) == (8, 2)  # .cvfs/ (3), .gitattributes, 2 data, tool.sh, link
    with tarfile.open(tmp_path / "data.tar") as tar:
        assert tar.extractfile("data/big.bin").read() == big  # type: ignore[union-attr]
        assert tar.extractfile("data/small.bin").read() == small  # type: ignore[union-attr]
        assert tar.getmember("tool.sh").mode == 0o755 and tar.getmember("link").issym()
    project.cvfs("archive", "HEAD", "-o", str(tmp_path / "data.zip"), "--prefix", "snap/")
    with zipfile.ZipFile(tmp_path / "data.zip") as zf:
        assert zf.read("snap/data/big.bin") == big
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before  # the lean cache kept nothing new
    bad = project.cvfs("archive", "nope", "-o", str(tmp_path / "x.tar"), check=False)
    assert bad.returncode == 2 and "'nope' is not a revision" in bad.stderr


def test_reconcile_fsck_and_ls_files_in_a_bare_repository(project: Project) -> None:
    """A server's repository has no work tree: it can still audit what its refs hold."""
    data, old = rand(20_000, 60), rand(20_000, 61)
    project.write("data/a.bin", old)
    project.commit_all("old")
    project.write("data/a.bin", data)
    project.commit_all("new")
    project.git("push", "-q", "origin", "main")
    bare = project.remote
    listed = git(bare, "cvfs", "ls-files", "--json")
    assert [(f["path"], f["oid"]) for f in json.loads(listed.stdout)] == [("data/a.bin", f"sha256:{hex_of(data)}")]
    assert json.loads(git(bare, "cvfs", "fsck", "--json").stdout)["ok"]
    assert git(bare, "cvfs", "reconcile").returncode == 0
    project.archive_path(hex_of(old)).unlink()  # an object only history needs
    audit = json.loads(git(bare, "cvfs", "reconcile", "--json", check=False).stdout)
    assert [(f["kind"], f["path"]) for f in audit["findings"]] == [("missing_in_archive", "data/a.bin")]
    refused = git(bare, "cvfs", "reconcile", "--fix-index", check=False)
    assert refused.returncode == 2 and "bare repository" in refused.stderr
