"""Plain git commands on a repository managed by git-cvfs, with a file archive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import Project, cvfs, git, imported_modules, rand, ref_of


def rows(project: Project, root: Path | None = None) -> dict[str, dict[str, object]]:
    out = {}
    for shard in sorted(((root or project.root) / ".cvfs" / "index").glob("*.jsonl")):
        for line in shard.read_text().splitlines():
            row = json.loads(line)
            out[row["path"]] = row
    return out


def test_add_commit_checkout_round_trip(project: Project) -> None:
    big = rand(200_000)
    project.write("data/big.bin", big)
    project.write("data/small.txt", b"small file\n")
    project.commit_all("add data")
    assert project.blob("HEAD:data/big.bin") == ref_of(big).encode()
    assert project.blob("HEAD:data/small.txt") == b"small file\n"
    assert project.archive_path(ref_of(big).hex).read_bytes() == big
    row = rows(project)["data/big.bin"]
    assert row["oid"] == ref_of(big).oid and row["size"] == len(big) and row["git"] is True
    assert (
        row["archives"]["primary"]["key"]
        == "objects/" + ref_of(big).hex[:2] + "/" + ref_of(big).hex[2:4] + "/" + ref_of(big).hex
    )  # type: ignore[index]
    assert "data/small.txt" not in rows(project)
    assert project.git("status", "--porcelain").stdout == ""
    (project.root / "data" / "big.bin").unlink()
    project.git("checkout", "--", "data")
    assert (project.root / "data" / "big.bin").read_bytes() == big
    assert project.git("status", "--porcelain").stdout == ""


def test_branch_switch_back_and_forth(project: Project) -> None:
    v1, v2 = rand(50_000, 1), rand(60_000, 2)
    project.write("data/model.bin", v1)
    project.commit_all("v1")
    project.git("checkout", "-q", "-b", "v2")
    project.write("data/model.bin", v2)
    project.write("data/extra.bin", rand(30_000, 3))
    project.commit_all("v2")
    for _ in range(2):
        project.git("checkout", "-q", "main")
        assert (project.root / "data/model.bin").read_bytes() == v1
        assert not (project.root / "data/extra.bin").exists()
        assert project.git("status", "--porcelain").stdout == ""
        project.git("checkout", "-q", "v2")
        assert (project.root / "data/model.bin").read_bytes() == v2
        assert project.git("status", "--porcelain").stdout == ""


def test_merge_of_branches_adding_different_files(project: Project) -> None:
    project.write("data/base.bin", rand(10_000, 1))
    project.commit_all("base")
    project.git("checkout", "-q", "-b", "left")
    project.write("data/left.bin", rand(10_000, 2))
    project.commit_all("left")
    project.git("checkout", "-q", "main")
    project.write("data/right.bin", rand(10_000, 3))
    project.commit_all("right")
    project.git("merge", "-q", "--no-edit", "left")
    assert set(rows(project)) == {"data/base.bin", "data/left.bin", "data/right.bin"}
    assert (project.root / "data/left.bin").read_bytes() == rand(10_000, 2)
    assert project.git("status", "--porcelain").stdout == ""


def test_same_file_changed_on_both_branches_is_a_conflict_that_keeps_ours(project: Project) -> None:
    project.write("data/m.bin", rand(10_000, 1))
    project.commit_all("base")
    project.git("checkout", "-q", "-b", "other")
    project.write("data/m.bin", rand(10_000, 2))
    project.commit_all("theirs")
    project.git("checkout", "-q", "main")
    project.write("data/m.bin", rand(10_000, 3))
    project.commit_all("ours")
    merge = project.git("merge", "--no-edit", "other", check=False)
    assert merge.returncode != 0 and "CONFLICT" in merge.stdout
    assert (project.root / "data/m.bin").read_bytes() == rand(10_000, 3)  # no conflict markers in data
    project.git("merge", "--abort")


def test_stash_push_and_pop(project: Project) -> None:
    v1, v2 = rand(20_000, 1), rand(20_000, 2)
    project.write("data/a.bin", v1)
    project.commit_all("v1")
    project.write("data/a.bin", v2)
    project.git("stash", "-q")
    assert (project.root / "data/a.bin").read_bytes() == v1
    project.git("stash", "pop", "-q")
    assert (project.root / "data/a.bin").read_bytes() == v2
    assert project.git("status", "--porcelain").stdout.strip() == "M data/a.bin"


def test_rebase(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 1))
    project.commit_all("a")
    project.git("checkout", "-q", "-b", "topic")
    project.write("data/t.bin", rand(20_000, 2))
    project.commit_all("topic")
    project.git("checkout", "-q", "main")
    project.write("data/m.bin", rand(20_000, 3))
    project.commit_all("main")
    project.git("checkout", "-q", "topic")
    project.git("rebase", "-q", "main")
    for name, seed in (("a", 1), ("t", 2), ("m", 3)):
        assert (project.root / f"data/{name}.bin").read_bytes() == rand(20_000, seed)
    assert set(rows(project)) == {"data/a.bin", "data/t.bin", "data/m.bin"}
    assert project.git("status", "--porcelain").stdout == ""


def test_clone_materializes_and_gets_hooks(project: Project, tmp_path: Path) -> None:
    big = rand(100_000)
    project.write("data/big.bin", big)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert (clone / "data/big.bin").read_bytes() == big
    assert git(clone, "status", "--porcelain").stdout == ""
    hooks = {p.name for p in (clone / ".git" / "hooks").iterdir() if not p.name.endswith(".sample")}
    assert {"pre-commit", "pre-push", "post-checkout", "post-merge", "post-commit"} <= hooks


def test_clone_of_more_than_the_verify_ahead_budget_from_a_directory_archive(project: Project, tmp_path: Path) -> None:
    """Past the first few files a checkout's objects are read and verified on other threads while
    git writes (delayed smudges), at most 64 MiB held: 96 MiB of them here, so verifiers wait for git
    to take what they hold, and every file still arrives whole, and clean in git's eyes; a copy
    that lies in the archive is left as a ref, not written."""
    files = {f"data/{i:02d}.bin": rand(3 << 20, seed=100 + i) for i in range(40)}
    for path, data in files.items():
        project.write(path, data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    liar = ref_of(files["data/17.bin"])
    project.archive_path(liar.hex).chmod(0o644)
    project.archive_path(liar.hex).write_bytes(rand(3 << 20, seed=999))  # right size, other bytes
    clone = tmp_path / "clone"
    # a verifier left waiting would hang the clone: bounded, so that fails instead
    subprocess.run(["git", "clone", "-q", str(project.remote), str(clone)], check=True, timeout=120)
    for path, data in files.items():
        want = liar.encode() if path == "data/17.bin" else data
        assert (clone / path).read_bytes() == want, path
    assert git(clone, "status", "--porcelain").stdout == ""


def test_skip_smudge_clone_keeps_refs_and_ensure_materializes(project: Project, tmp_path: Path) -> None:
    big = rand(100_000)
    project.write("data/big.bin", big)
    project.write("data/other.bin", rand(5000, 9))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    assert (lazy / "data/big.bin").read_bytes() == ref_of(big).encode()
    assert git(lazy, "status", "--porcelain").stdout == ""
    pre = git(lazy, "cvfs", "preflight", "data/big.bin", check=False)
    assert pre.returncode == 1 and "data/big.bin" in pre.stdout
    result = json.loads(git(lazy, "cvfs", "ensure", "--json", "data/big.bin").stdout)
    assert result == {
        "ok": True,
        "materialized": ["data/big.bin"],
        "already_materialized": [],
        "still_refs": [],
        "failed": {},
        "sparse": [],
        "missing": [],
    }
    assert (lazy / "data/big.bin").read_bytes() == big
    assert (lazy / "data/other.bin").stat().st_size < 1024
    assert git(lazy, "status", "--porcelain").stdout == ""
    assert git(lazy, "cvfs", "preflight", "data/big.bin").returncode == 0


def test_ensure_of_a_deleted_file_says_so_and_fails_when_it_was_named(project: Project, tmp_path: Path) -> None:
    """A managed file gone from the work tree (deleted, or a checkout that stopped half-way) is
    not materialized by ensure, which only turns refs into data: named, that is a failure (it
    is not ready), with the command that restores it; unnamed, a notice."""
    project.write("data/a.bin", rand(5000, 1))
    project.write("data/b.bin", rand(5000, 2))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    (lazy / "data/a.bin").unlink()
    named = git(lazy / "data", "cvfs", "ensure", "a.bin", "b.bin", check=False)
    assert named.returncode == 1, named.stderr
    assert "error: data/a.bin: not in the work tree (deleted" in named.stderr
    assert "hint: `git checkout -- :/data/a.bin` restores deleted files" in named.stderr
    assert (lazy / "data/b.bin").stat().st_size == 5000  # the other named file is still done
    result = json.loads(git(lazy, "cvfs", "ensure", "--json", "data", check=False).stdout)
    assert result["ok"] is False and result["missing"] == ["data/a.bin"] and "data/a.bin" in result["failed"]
    everything = git(lazy, "cvfs", "ensure", check=False)
    assert everything.returncode == 0 and "1 file(s) not in the work tree (deleted): data/a.bin" in everything.stderr
    assert git(lazy / "data", "checkout", "--", ":/data/a.bin").returncode == 0  # the hint works from a subdirectory
    assert (lazy / "data/a.bin").exists()
    assert git(lazy, "cvfs", "preflight", "data").returncode == 0


def test_paths_named_from_a_subdirectory_are_read_from_there_as_git_reads_them(project: Project) -> None:
    """`git cvfs offload a.bin` in data/ means data/a.bin. It used to be read from the top,
    where it matched nothing: offload freed nothing and status listed nothing, both exit 0."""
    project.write("data/a.bin", rand(5000, 1))
    project.write("data/sub/b.bin", rand(5000, 2))
    project.commit_all()
    here = project.root / "data"
    assert "offloaded data/a.bin" in cvfs(here, "offload", "a.bin").stdout
    status = json.loads(cvfs(here, "status", "--json", "--offline", "a.bin", "sub/").stdout)
    assert sorted(f["path"] for f in status["files"]) == ["data/a.bin", "data/sub/b.bin"]
    pre = cvfs(here, "preflight", "a.bin", check=False)  # a ref: its hint must work from here too
    assert pre.returncode == 1 and "hint: git cvfs ensure :/data/a.bin" in pre.stderr, pre.stderr
    assert cvfs(here / "sub" / "..", "ensure", ":(literal)a.bin").returncode == 0
    assert (here / "a.bin").stat().st_size == 5000
    assert cvfs(here / "sub", "offload", ":/data/sub/b.bin").returncode == 0  # git's "from the top"
    for args in (("status", "nope.bin"), ("offload", "nope.bin"), ("ensure", "../../outside.bin")):
        refused = cvfs(here, *args, check=False)
        assert refused.returncode != 0 and "hint:" in refused.stderr and "Traceback" not in refused.stderr, args
    assert "outside the repository" in cvfs(here, "ensure", "../../outside.bin", check=False).stderr


def test_exclude_pathspecs_take_paths_away_from_wherever_they_are_given(project: Project) -> None:
    """`:!x`, `:^x` and `:(exclude)x` as git reads them: from the current directory, and an
    exclusion need not match anything itself. They were refused as matching nothing, and the
    short forms refused outright below the top."""
    project.write("data/a.bin", rand(5000, 1))
    project.write("data/b.bin", rand(5000, 2))
    project.write("data/sub/c.bin", rand(5000, 3))
    project.commit_all()

    def listed(where: Path, *specs: str) -> list[str]:
        out = json.loads(cvfs(where, "status", "--json", "--offline", *specs).stdout)
        return sorted(f["path"] for f in out["files"])

    here = project.root / "data"
    assert listed(project.root, ":!data/a.bin") == ["data/b.bin", "data/sub/c.bin"]
    assert listed(project.root, "data", ":(exclude)data/sub") == ["data/a.bin", "data/b.bin"]
    assert listed(here, ".", ":^sub") == ["data/a.bin", "data/b.bin"]
    assert listed(here, ":!a.bin", ":!sub/") == ["data/b.bin"]
    assert listed(here / "sub", "..", ":(exclude)../b.bin") == ["data/a.bin", "data/sub/c.bin"]
    assert listed(here, "sub", ":!sub/c.bin") == []  # sub named something; the exclusion took it all
    typo = cvfs(here, "status", "sbu", ":!a.bin", check=False)  # a typo is still one
    assert typo.returncode == 1 and "'data/sbu' did not match" in typo.stderr, typo.stderr
    assert cvfs(here, "offload", ".", ":!sub").returncode == 0  # a.bin and b.bin become refs
    assert (here / "a.bin").read_bytes() == ref_of(rand(5000, 1)).encode()
    assert (here / "sub/c.bin").read_bytes() == rand(5000, 3)
    assert cvfs(here, "ensure", ".", ":!b.bin").returncode == 0
    assert (here / "a.bin").read_bytes() == rand(5000, 1)
    assert (here / "b.bin").read_bytes() == ref_of(rand(5000, 2)).encode()


def test_fetch_exclude_leaves_refs(project: Project, tmp_path: Path) -> None:
    project.git("config", "-f", ".cvfs/config", "fetch.exclude", "data/raw/**")
    project.write("data/raw/r.bin", rand(5000, 1))
    project.write("data/keep.bin", rand(5000, 2))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "c")
    assert (clone / "data/keep.bin").read_bytes() == rand(5000, 2)
    assert (clone / "data/raw/r.bin").read_bytes() == ref_of(rand(5000, 1)).encode()


def test_files_below_min_size_and_empty_files_stay_plain_git(project: Project) -> None:
    project.write("data/below.bin", rand(1000))
    project.write("data/empty.bin", b"")
    project.write("data/at.bin", rand(1024, 5))
    project.commit_all()
    assert project.blob("HEAD:data/below.bin") == rand(1000)
    assert project.blob("HEAD:data/empty.bin") == b""
    assert project.blob("HEAD:data/at.bin") == ref_of(rand(1024, 5)).encode()
    assert set(rows(project)) == {"data/at.bin"}


def test_commit_a_and_commit_paths_stage_rows_in_the_same_commit(project: Project) -> None:
    project.write("data/a.bin", rand(5000, 1))
    project.write("data/b.bin", rand(5000, 2))
    project.commit_all("start")
    project.write("data/a.bin", rand(5000, 3))
    project.git("commit", "-q", "-a", "-m", "commit -a")
    head_rows = project.blob("HEAD:.cvfs/index/data.jsonl").decode()
    assert ref_of(rand(5000, 3)).oid in head_rows
    project.write("data/a.bin", rand(5000, 4))
    project.write("data/b.bin", rand(5000, 5))
    project.git("add", "data/b.bin")
    project.git("commit", "-q", "-m", "only a", "--", "data/a.bin")
    head_rows = project.blob("HEAD:.cvfs/index/data.jsonl").decode()
    assert ref_of(rand(5000, 4)).oid in head_rows and ref_of(rand(5000, 5)).oid not in head_rows
    # b stays staged, and the index agrees with HEAD on the shard (no phantom change)
    assert project.git("status", "--porcelain").stdout.splitlines() == ["M  data/b.bin"]


def test_pre_commit_refuses_raw_large_file_in_scope_and_malformed_refs(project: Project) -> None:
    project.git("config", "-f", ".cvfs/config", "scope.prefix", "models/")
    project.commit_all("config")
    project.write("models/w.pt", rand(5000))
    project.git("add", "models/w.pt")
    refused = project.git("commit", "-m", "raw", check=False)
    assert refused.returncode != 0
    assert "models/w.pt" in refused.stderr and "git cvfs track" in refused.stderr
    assert refused.stderr.count("error:") == 1 and "hint:" in refused.stderr
    project.git("reset", "-q")
    (project.root / "models/w.pt").unlink()
    project.write("data/bad.bin", b'{"cvfs":1,"oid":"sha256:1234","size":5}\n')
    project.git("add", "data/bad.bin")
    refused = project.git("commit", "-m", "bad ref", check=False)
    assert refused.returncode != 0 and "data/bad.bin" in refused.stderr and "malformed" in refused.stderr
    assert project.git("rev-list", "--count", "HEAD").stdout.strip() == "1"


def test_pre_push_uploads_what_the_archive_lacks_and_refuses_what_is_nowhere(project: Project, tmp_path: Path) -> None:
    data = rand(5000, 1)
    project.write("data/a.bin", data)
    project.commit_all()
    obj = project.archive_path(ref_of(data).hex)
    obj.unlink()
    (project.root / ".git/cvfs/verified").rename(tmp_path / "forgotten")  # this machine forgets it was archived
    project.git("push", "-q", "origin", "main")
    assert obj.read_bytes() == data
    # An object in no cache and no archive: the push is refused, naming the file.
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    lost = rand(5000, 2)
    git(lazy, "config", "core.hooksPath", ".git/hooks")
    (lazy / "data").mkdir(exist_ok=True)
    (lazy / "data/lost.bin").write_bytes(ref_of(lost).encode())  # a ref whose bytes nobody has
    git(lazy, "add", "data/lost.bin")
    refused = git(lazy, "commit", "-m", "lost", check=False)
    assert refused.returncode != 0 and "data/lost.bin" in refused.stderr
    git(lazy, "commit", "-q", "--no-verify", "-m", "lost")
    pushed = git(lazy, "push", "origin", "main", check=False)
    assert pushed.returncode != 0 and "data/lost.bin" in pushed.stderr
    assert (
        git(project.root, "ls-remote", str(project.remote), "main").stdout.split()[0]
        == project.git("rev-parse", "HEAD").stdout.strip()
    )


def test_pre_push_over_a_remote_commit_this_clone_never_fetched(project: Project, tmp_path: Path) -> None:
    # A force push names the remote's tip, which this clone does not have: the hook must
    # still find and upload what the pushed commits hold, not die on the unknown commit.
    project.write("data/a.bin", rand(5000, 3))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    other = project.clone(tmp_path / "other")
    (other / "notes.txt").write_text("from elsewhere\n")
    git(other, "add", "notes.txt")
    git(other, "commit", "-q", "-m", "elsewhere")
    git(other, "push", "-q", "origin", "main")
    data = rand(5000, 4)
    project.write("data/c.bin", data)
    project.commit_all("c")
    obj = project.archive_path(ref_of(data).hex)
    obj.unlink()
    (project.root / ".git/cvfs/verified").rename(tmp_path / "forgotten")  # this machine forgets it was archived
    project.git("push", "-q", "--force", "origin", "main")
    assert obj.read_bytes() == data


def test_pre_push_with_nothing_new_asks_the_archive_only_for_its_gc_marker(project: Project, tmp_path: Path) -> None:
    # Objects this machine verified are not asked about again, but git cvfs gc may have deleted
    # one since (a ref to it published again would point at nothing): the archive's gc marker
    # is the one request (core/gc.py); a docs-only push makes none.
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    trace = tmp_path / "trace.log"
    project.git("push", "-q", "origin", "main", env={"GIT_CVFS_TRACE": str(trace)})
    calls = [line for line in trace.read_text().splitlines() if "archive:" in line and " opened:" not in line]
    assert len(calls) == 1 and " head gc/epoch" in calls[0], calls
    project.archive.rename(tmp_path / "archive-offline")  # any archive call would now fail
    project.write("README", b"docs only\n")
    project.commit_all("docs")
    project.git("push", "-q", "origin", "main")
    # And the hook does call the archive when there is something new: with the archive away,
    # a commit whose object was never archived is refused (so the pushes above were not
    # passing for want of a hook).
    project.write("data/new.bin", rand(5000, 1))
    project.git("add", "data/new.bin")
    project.git("commit", "-q", "--no-verify", "-m", "new")
    refused = project.git("push", "origin", "main", check=False)
    assert refused.returncode != 0 and "push refused" in refused.stderr and "data/new.bin" in refused.stderr


def test_pre_push_with_nothing_new_imports_only_what_it_uses(project: Project) -> None:
    # Most pushes add no large file. argparse, the uploads (concurrent.futures, logging),
    # the inventory (json, dataclasses with inspect) cost such a push's hook about 40 ms.
    project.write("data/a.bin", rand(5000, 5))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    unwanted = {"argparse", "dataclasses", "concurrent.futures", "json", "git_cvfs.core.push"}
    unwanted |= {"git_cvfs.remote.transfer", "git_cvfs.format.inventory"}
    for name, change in (("empty", None), ("docs", b"docs only\n")):
        if change is None:
            project.git("commit", "-q", "--allow-empty", "-m", name)
        else:
            project.write("README", change)
            project.commit_all(name)
        pushed = project.git("push", "-q", "origin", "main", env={"PYTHONPROFILEIMPORTTIME": "1"})
        imported = imported_modules(pushed.stderr)
        assert "git_cvfs.core.plumbing.hooks" in imported, name  # the hook ran, and was measured
        assert imported & unwanted == set(), name


def test_single_file_filter_gives_identical_results(project: Project, tmp_path: Path) -> None:
    data = rand(5000, 7)
    # A git config with only the one-process-per-file filter (no filter.cvfs.process).
    config = tmp_path / "gitconfig-single"
    config.write_text("[user]\n\tname = T\n\temail = t@example.invalid\n")
    from git_cvfs.core.setup import filter_config
    from tests.conftest import CVFS

    for key, value in filter_config(CVFS).items():
        if key != "filter.cvfs.process":
            git(tmp_path, "config", "-f", str(config), key, value)
    git(tmp_path, "config", "-f", str(config), "cvfs.trusted", project.archive.as_uri())  # the approval init made
    env = {"GIT_CONFIG_GLOBAL": str(config)}
    project.write("data/a.bin", data)
    project.git("add", "-A", env=env)
    project.git("commit", "-q", "-m", "single", env=env)
    assert project.blob("HEAD:data/a.bin") == ref_of(data).encode()
    (project.root / "data/a.bin").unlink()
    project.git("checkout", "--", "data/a.bin", env=env)
    assert (project.root / "data/a.bin").read_bytes() == data
    assert project.git("status", "--porcelain", env=env).stdout == ""


def _entry_mtimes(repo: Path, prefix: str) -> dict[str, int]:
    out, path = {}, ""
    for line in git(repo, "ls-files", "--debug", prefix).stdout.splitlines():
        if not line.startswith(" "):
            path = line
        elif line.strip().startswith("mtime:"):
            out[path] = int(line.split("mtime:")[1].split(":")[0])
    return out


def _status_starts_the_filter(repo: Path) -> bool:
    trace = repo.parent / f"{repo.name}.trace"
    trace.unlink(missing_ok=True)
    assert git(repo, "status", "--porcelain", env={"GIT_TRACE": str(trace)}).stdout == ""
    return "filter-process" in trace.read_text()


def test_first_status_after_checkout_or_clone_reads_no_file_again(project: Project) -> None:
    # git re-reads, through the clean filter, every file written in the same second as its
    # index ("racily clean"): for data files that is hashing them all again. The filter,
    # closed as git exits, takes the files it gave git out of that window (settle_racy).
    files = {f"data/f{i:02d}.bin": rand(4096, seed=i) for i in range(30)}
    for rel, data in files.items():
        project.write(rel, data)
    project.commit_all("data")
    project.git("push", "-q", "origin", "main")
    for rel in files:
        (project.root / rel).unlink()
    project.git("checkout", "--", "data")
    clone = project.clone(project.root.parent / "clone")
    lazy = project.clone(project.root.parent / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    refs = {rel: project.git("show", f"HEAD:{rel}").stdout.encode() for rel in files}

    for repo, want in ((project.root, files), (clone, files), (lazy, refs)):
        assert {rel: (repo / rel).read_bytes() for rel in files} == want
        index_mtime = int((repo / ".git" / "index").stat().st_mtime)
        mtimes = _entry_mtimes(repo, "data")
        assert len(mtimes) == len(files) and max(mtimes.values()) < index_mtime, "entries left racy"
        assert not _status_starts_the_filter(repo)
        # The detector can fail: make the entries racy again and git does re-clean them.
        newest = max(mtimes.values()) * 1_000_000_000
        os.utime(repo / ".git" / "index", ns=(newest, newest))
        assert _status_starts_the_filter(repo)


def test_pre_commit_refuses_raw_content_that_bypassed_the_filter(project: Project) -> None:
    """A managed path whose bytes reached the index raw (git-cvfs not installed on that machine,
    or the filter switched off): the commit is refused, naming the file and the fix."""
    raw = rand(5000, 8)
    project.write("data/raw.bin", raw)
    no_filter = ["-c", "filter.cvfs.process=", "-c", "filter.cvfs.clean=", "-c", "filter.cvfs.required=false"]
    project.git(*no_filter, "add", "data/raw.bin")  # as a machine without git-cvfs adds it
    assert project.blob(":data/raw.bin") == raw  # the index holds the raw bytes
    refused = project.git("commit", "-m", "raw", check=False)
    assert refused.returncode != 0
    assert "data/raw.bin" in refused.stderr and "bypassed the cvfs filter" in refused.stderr
    assert "git cvfs install" in refused.stderr and "hint:" in refused.stderr
    assert project.git("rev-parse", "-q", "--verify", "HEAD", check=False).returncode != 0  # nothing committed
    project.git("add", "--renormalize", "data/raw.bin")  # the fix: the filter turns it into a ref
    project.git("commit", "-q", "-m", "managed")
    assert project.blob("HEAD:data/raw.bin") == ref_of(raw).encode()


PATHSPECS = [
    "data/*.bin",  # git's default wildcards: `*` crosses `/`
    "dat*",
    "data/[ab].bin",
    ":(glob)data/*",  # wildmatch: `*` stays in its directory
    ":(glob)data/**/*.bin",
    ":(glob)**/*.csv",
    ":(glob)data/?.bin",
    ":(glob)data/*/",  # directories only: no file
    ":(icase)DATA/SUB",
    ":(icase)data/b.BIN",
    ":(icase,glob)DATA/*.BIN",
    ":(literal)data/*.bin",
    ":(top,icase)Data",
    ":(attr:label=x)",  # attributes, from .gitattributes (the test writes them)
    ":(attr:label=x)data/sub",
    ":(attr:flag)data",
    ":(attr:-flag)",
    ":(attr:!label flag)",
    ":(attr:label=y)",  # no file has it
    ":(exclude,attr:flag)",
]


def test_pathspec_magic_selects_what_git_selects(project: Project, tmp_path: Path) -> None:
    """`:(glob)` and `:(icase)` were read as plain fnmatch patterns: `:(icase)data/b.BIN` was
    refused as matching nothing, and `fetch --rev` (which matches paths itself) took
    `:(glob)data/*` for every file below data/. Each pathspec now picks what `git ls-files`
    picks, in `status` (git matches, git-cvfs checks) and in `fetch --rev` (git-cvfs matches).
    `:(attr:...)` was taken for its path alone there: every file, whatever its attributes."""
    for rel, seed in (("data/a.bin", 1), ("data/B.bin", 2), ("data/sub/c.bin", 3), ("data/sub/d/e.csv", 4)):
        project.write(rel, rand(5000, seed))
    project.write("Data/Q.bin", rand(500, 5))  # not tracked by git-cvfs: a plain file, which git lists
    with (project.root / ".gitattributes").open("a") as attributes:
        attributes.write("data/sub/** label=x\ndata/a.bin flag\ndata/B.bin -flag\n")
    project.commit_all()
    project.git("push", "-q", "origin", "HEAD:main")
    managed = {"data/a.bin", "data/B.bin", "data/sub/c.bin", "data/sub/d/e.csv"}
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    git(lazy, "cvfs", "trust", "--yes")
    for spec in PATHSPECS:
        # git 2.39's ls-files gets attributes wrong under a directory (`:(attr:label=x)data/sub`
        # lists nothing); grep over the index (every file here holds a line) gets them right
        listing = ["grep", "--cached", "-l", "-z", "-e", ""] if "attr:" in spec else ["ls-files", "-z"]
        listed = project.git(*listing, "--", spec, check=False)
        assert listed.returncode in (0, 1) and not listed.stderr, (spec, listed.stderr)  # grep: 1 is no match
        wanted = set(listed.stdout.split("\0")[:-1]) & managed
        status = cvfs(project.root, "status", "--json", "--offline", spec, check=False)
        if wanted:
            assert status.returncode == 0, (spec, status.stderr)
            assert {f["path"] for f in json.loads(status.stdout)["files"]} == wanted, spec
        else:
            assert status.returncode == 1 and "did not match" in status.stderr, (spec, status.stderr)
        shutil.rmtree(lazy / ".git/cvfs/objects", ignore_errors=True)
        fetched = git(lazy, "cvfs", "fetch", "--rev", "origin/main", "--json", spec, check=False)
        if wanted:
            assert fetched.returncode == 0, (spec, fetched.stderr)
            got = {f.split(":", 1)[1] for f in json.loads(fetched.stdout)["fetched"]}
            assert got == wanted, spec
        else:
            assert fetched.returncode == 1, (spec, fetched.stderr)
