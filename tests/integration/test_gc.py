"""`git cvfs gc`: only objects no ref (remote or local), index, inventory row or recent upload
needs are deleted; a second run deletes nothing; a machine that trusted its record of the
archive re-uploads what gc took before it publishes a ref to it."""

from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path

import pytest

from git_cvfs.remote.archive import object_key
from tests.conftest import CloudArchive, Project, cvfs, git, new_project, rand, ref_of

OLD = time.time() - 30 * 86400


def objects(project: Project) -> set[str]:
    return {p.name for p in (project.archive / "objects").rglob("*") if p.is_file()}


def age_archive(project: Project) -> None:
    for p in (project.archive / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (OLD, OLD))


def stray(project: Project, data: bytes, when: float) -> str:
    """An object in the archive that nothing references (someone's abandoned upload)."""
    path = project.archive_path(ref_of(data).hex)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))
    return ref_of(data).hex


def history(project: Project) -> dict[str, bytes]:
    d = {n: rand(20_000 + i * 100, 500 + i) for i, n in enumerate(["a1", "a2", "t", "e", "l", "g", "s"])}
    project.write(".gitignore", b"data/gen/\n")
    project.write("data/a.bin", d["a1"])
    project.commit_all("a1")  # old history: replaced below
    project.write("data/t.bin", d["t"])
    project.commit_all("tagged")
    project.git("tag", "v1")
    project.git("rm", "-q", "data/t.bin")  # only the tag still has it
    project.write("data/a.bin", d["a2"])
    project.commit_all("a2")
    project.git("checkout", "-q", "-b", "exp")
    project.write("data/e.bin", d["e"])
    project.commit_all("unmerged experiment")
    project.git("checkout", "-q", "main")
    project.git("push", "-q", "origin", "main", "exp", "v1")
    project.git("checkout", "-q", "-b", "local-work")  # never pushed
    project.write("data/l.bin", d["l"])
    project.commit_all("local only")
    project.git("checkout", "-q", "main")
    project.write("data/gen/g.bin", d["g"])  # gitignored: its row is its only record
    project.cvfs("register", "data/gen/g.bin")
    project.cvfs("push")
    project.commit_all("record g")
    project.git("push", "-q", "origin", "main")
    project.write("data/staged.bin", d["s"])
    project.git("add", "data/staged.bin")  # in the index only, uploaded by nobody yet
    project.cvfs("push")
    return d


def test_gc_deletes_only_the_truly_unreferenced_and_a_second_run_nothing(project: Project) -> None:
    d = history(project)
    age_archive(project)
    junk = stray(project, rand(9_000, 1), OLD)
    fresh = stray(project, rand(9_000, 2), time.time())  # an upload for a push in flight elsewhere
    kept = {ref_of(v).hex for v in d.values()}
    assert kept | {junk, fresh} <= objects(project)

    plan = json.loads(project.cvfs("gc", "--archive", "primary", "--json").stdout)
    assert plan["dry_run"] and [o["key"].rsplit("/", 1)[-1] for o in plan["would_delete"]] == [junk]
    assert plan["kept_young"] == 1 and plan["kept_referenced"] == len(kept)
    assert junk in objects(project)  # a dry run deletes nothing

    done = project.cvfs("gc", "--archive", "primary", "--apply")
    assert "deleted 1 object(s)" in done.stdout
    assert objects(project) == kept | {fresh} | (objects(project) & {fresh})
    assert junk not in objects(project) and kept <= objects(project) and fresh in objects(project)

    again = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json").stdout)
    assert again["deleted"] == []

    shorter = json.loads(project.cvfs("gc", "--archive", "primary", "--grace", "0", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in shorter["would_delete"]] == [fresh]


def test_a_pull_request_from_a_fork_keeps_its_objects(project: Project, tmp_path: Path) -> None:
    history(project)
    project.git("checkout", "-q", "--detach")
    pr = rand(25_000, 9)
    project.write("data/pr.bin", pr)
    project.commit_all("a contributor's change, on no branch of ours")
    project.git("push", "-q", "origin", "HEAD:refs/pull/7/head")  # as GitHub keeps a fork's PR
    project.git("checkout", "-q", "main")
    project.git("reflog", "expire", "--expire=now", "--all")
    project.git("gc", "-q", "--prune=now")
    age_archive(project)
    project.cvfs("gc", "--archive", "primary", "--apply")
    assert ref_of(pr).hex in objects(project)
    assert project.git("for-each-ref", "refs/cvfs-gc/").stdout == ""  # gc's own fetch leaves no refs


def test_gc_refuses_when_it_cannot_see_a_remote(project: Project, tmp_path: Path) -> None:
    history(project)
    age_archive(project)
    junk = stray(project, rand(9_000, 1), OLD)
    project.git("remote", "add", "gone", str(tmp_path / "no-such-repo.git"))
    proc = project.cvfs("gc", "--archive", "primary", "--apply", check=False)
    assert proc.returncode == 1 and "cannot fetch the git remote 'gone'" in proc.stderr and "hint:" in proc.stderr
    assert junk in objects(project)
    only_origin = project.cvfs("gc", "--archive", "primary", "--remote", "origin", "--apply")
    assert "deleted 1 object(s)" in only_origin.stdout


def test_a_machine_that_trusted_its_record_uploads_again_what_gc_took(project: Project, tmp_path: Path) -> None:
    project.write("data/first.bin", rand(10_000, 6))
    project.commit_all("first")
    project.git("push", "-q", "origin", "main")
    other = project.clone(tmp_path / "other")
    data = rand(40_000, 7)
    (other / "data/x.bin").write_bytes(data)
    git(other, "add", "data/x.bin")
    git(other, "commit", "-q", "-m", "x")  # uploaded here: this machine records the archive holds x
    git(other, "push", "-q", "origin", "main")
    # The team squashes x out of history; nothing references x any more.
    git(other, "checkout", "-q", "--orphan", "squashed", "main~1")
    git(other, "commit", "-q", "-m", "history squashed")
    git(other, "push", "-q", "-f", "origin", "squashed:main")
    git(other, "checkout", "-q", "-B", "main", "squashed")
    git(other, "branch", "-q", "-D", "squashed")
    project.git("pull", "-q", "--rebase=false", "-X", "theirs", "origin", "main", check=False)
    project.git("reset", "-q", "--hard", "origin/main")
    project.git("reflog", "expire", "--expire=now", "--all")
    age_archive(project)
    project.cvfs("gc", "--archive", "primary", "--apply")
    assert ref_of(data).hex not in objects(project)

    # The other machine adds the same bytes again: its record says the archive holds them, so
    # its pre-commit uploads nothing; its pre-push sees gc's marker, asks, and uploads.
    (other / "data/x-again.bin").write_bytes(data)
    git(other, "add", "data/x-again.bin")
    git(other, "commit", "-q", "-m", "x again")
    git(other, "push", "-q", "origin", "main")
    assert project.archive_path(ref_of(data).hex).read_bytes() == data


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_gc_on_a_cloud_archive_goes_by_the_archive_s_own_dates(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.integration.test_cloud import read_object, write_object

    cloud: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    project = new_project(tmp_path, cloud.config())
    kept = rand(30_000, 1)
    project.write("data/kept.bin", kept)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    stray_data = rand(20_000, 2)
    stray_key = f"team/{object_key(ref_of(stray_data).hex)}"
    write_object(cloud, stray_key, stray_data)

    young = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json").stdout)
    assert young["deleted"] == [] and young["kept_young"] == 1  # just stored: within 14 days
    done = json.loads(project.cvfs("gc", "--archive", "primary", "--grace", "0", "--apply", "--json").stdout)
    assert [o["key"] for o in done["deleted"]] == [object_key(ref_of(stray_data).hex)]
    assert read_object(cloud, stray_key) is None
    assert read_object(cloud, f"team/{object_key(ref_of(kept).hex)}") == kept
    assert read_object(cloud, "team/gc/epoch") is not None  # the marker pre-push hooks read
    root = project.git("rev-list", "--max-parents=0", "HEAD").stdout.strip()
    assert json.loads(read_object(cloud, f"team/repos/{root}") or b"{}")["roots"] == [root]
    other = '{"remote": "https://example.com/team/other.git", "roots": ["' + "e" * 40 + '"]}\n'
    write_object(cloud, "team/repos/" + "e" * 40, other.encode())  # another repository's record
    shared = project.cvfs("gc", "--archive", "primary", "--grace", "0", check=False)
    assert shared.returncode == 1
    assert f"1 other repository (first commit {'e' * 12}, https://example.com/team/other.git)" in shared.stderr


def test_an_offline_commit_keeps_its_cache_copy_whatever_this_machine_recorded(
    project: Project, tmp_path: Path
) -> None:
    # This machine's record says the archive holds these bytes, but with the archive out of
    # reach nobody can say whether gc took them since: the cache copy stays for the push.
    data = rand(40_000, 11)
    project.write("data/a.bin", data)
    project.commit_all("a")
    project.archive.rename(tmp_path / "away")
    for recorded in (project.root / ".git/cvfs/verified").glob("*.repository"):
        recorded.unlink()  # as if this clone had not recorded the repository in the archive yet
    project.write("data/b.bin", data)
    project.git("add", "data/b.bin")
    proc = project.git("commit", "-q", "-m", "b")
    assert "committing without archiving 1 object(s)" in proc.stderr
    h = ref_of(data).hex
    assert (project.root / ".git/cvfs/objects" / h[:2] / h[2:4] / h).read_bytes() == data
    pushed = project.cvfs("push", check=False)  # asks the archive about every object: out of reach
    assert pushed.returncode == 1 and "primary" in pushed.stderr
    for said in (proc.stderr, pushed.stderr):  # one cause, one message: no word about the record
        assert "could not record this repository" not in said


def three_versions(project: Project) -> list[bytes]:
    """data/a.bin committed three times and pushed: each older version is needed only by its commit."""
    versions = [rand(20_000, 30 + i) for i in range(3)]
    for i, data in enumerate(versions):
        project.write("data/a.bin", data)
        project.commit_all(f"version {i}")
    project.git("push", "-q", "origin", "main")
    age_archive(project)
    return versions


def test_gc_refuses_in_a_shallow_clone_and_works_once_it_is_whole(project: Project, tmp_path: Path) -> None:
    # A CI runner's clone: only the tip commit is here, so the older versions look unneeded.
    versions = three_versions(project)
    junk = stray(project, rand(9_000, 1), OLD)
    before = objects(project)
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", project.remote.as_uri(), shallow.name)
    for command in (["gc", "--archive", "primary", "--apply"], ["reconcile", "--orphans"]):
        proc = cvfs(shallow, *command, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "error: this clone is shallow" in proc.stderr and "hint: " in proc.stderr
        assert "git fetch --unshallow" in proc.stderr
    assert objects(project) == before

    git(shallow, "fetch", "-q", "--unshallow")
    done = json.loads(cvfs(shallow, "gc", "--archive", "primary", "--apply", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in done["deleted"]] == [junk]
    assert {ref_of(v).hex for v in versions} <= objects(project)


def test_gc_in_a_partial_clone_fetches_the_history_it_reads_in_one_request(project: Project, tmp_path: Path) -> None:
    # `git clone --filter=blob:none`: the refs of history are not here. Asked for one at a time,
    # git fetched them one request (and one pack) each: minutes for a long history.
    versions = [rand(9_000, 60 + i) for i in range(12)]
    for i, data in enumerate(versions):
        project.write(f"data/v{i % 3}.bin", data)
        project.commit_all(f"version {i}")
    project.git("push", "-q", "origin", "main")
    age_archive(project)
    junk = stray(project, rand(9_000, 1), OLD)
    git(project.remote, "config", "uploadpack.allowFilter", "true")
    partial = tmp_path / "partial"
    git(tmp_path, "clone", "-q", "--filter=blob:none", project.remote.as_uri(), partial.name)

    def promisor_packs() -> int:
        return len(list((partial / ".git/objects/pack").glob("*.promisor")))

    before = promisor_packs()
    plan = json.loads(cvfs(partial, "gc", "--archive", "primary", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in plan["would_delete"]] == [junk]
    assert plan["kept_referenced"] == len(versions)
    assert promisor_packs() - before == 1  # every missing ref of history in one fetch
    audit = json.loads(cvfs(partial, "reconcile", "--orphans", "--json", check=False).stdout)
    assert [f["path"].rsplit("/", 1)[-1] for f in audit["findings"] if f["kind"] == "orphan"] == [junk]
    assert promisor_packs() - before == 1  # and nothing fetched again


def test_gc_looks_behind_git_replace_and_refuses_a_grafts_file(project: Project, tmp_path: Path) -> None:
    versions = three_versions(project)
    hidden = project.git("rev-parse", "HEAD~1").stdout.strip()
    project.git("replace", "--graft", "HEAD", "HEAD~2")  # here, the middle commit is cut out
    project.git("reflog", "expire", "--expire=now", "--all")  # nor does a reflog name it
    assert hidden not in project.git("rev-list", "--all").stdout

    plan = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json").stdout)
    assert plan["deleted"] == [] and {ref_of(v).hex for v in versions} <= objects(project)
    audit = json.loads(project.cvfs("reconcile", "--orphans", "--json", check=False).stdout)
    assert audit["checked_paths"] == 1 and [f for f in audit["findings"] if f["kind"] == "orphan"] == []
    other = project.clone(tmp_path / "other")  # a clone has no replace refs: the commit is there
    git(other, "checkout", "-q", "HEAD~1")
    assert (other / "data/a.bin").read_bytes() == versions[1]

    project.git("replace", "-d", project.git("rev-parse", "HEAD").stdout.strip())
    grafts = project.root / ".git" / "info" / "grafts"
    grafts.write_text(
        f"{project.git('rev-parse', 'HEAD').stdout.strip()} {project.git('rev-parse', 'HEAD~2').stdout.strip()}\n"
    )
    for command in (["gc", "--archive", "primary", "--apply"], ["reconcile", "--orphans"]):
        proc = project.cvfs(*command, check=False)
        assert proc.returncode == 1 and f"error: {grafts} gives commits other parents" in proc.stderr
    assert {ref_of(v).hex for v in versions} <= objects(project)


def test_a_file_registered_in_another_worktree_keeps_its_object(project: Project, tmp_path: Path) -> None:
    project.write(".gitignore", b"data/gen/\n")
    project.write("data/a.bin", rand(20_000, 40))
    project.commit_all("a")
    project.git("push", "-q", "origin", "main")
    linked = tmp_path / "linked"
    project.git("worktree", "add", "-q", "--detach", str(linked), "HEAD")
    generated = rand(21_000, 41)
    (linked / "data/gen").mkdir(parents=True)
    (linked / "data/gen/g.bin").write_bytes(generated)
    cvfs(linked, "register", "data/gen/g.bin")  # its row is in that worktree's .cvfs/index only
    cvfs(linked, "push")
    age_archive(project)
    kept = ref_of(generated).hex
    for where in (project.root, linked):
        done = json.loads(cvfs(where, "gc", "--archive", "primary", "--apply", "--json").stdout)
        assert done["deleted"] == [], where
        audit = json.loads(cvfs(where, "reconcile", "--orphans", "--json", check=False).stdout)
        assert [f for f in audit["findings"] if f["kind"] == "orphan"] == [], where
    assert kept in objects(project)

    linked.rename(tmp_path / "moved")  # on a drive that is not mounted now, say
    proc = project.cvfs("gc", "--archive", "primary", "--apply", check=False)
    assert proc.returncode == 1 and f"error: the worktree {linked} is missing" in proc.stderr
    assert "hint: bring it back" in proc.stderr and kept in objects(project)
    project.git("worktree", "prune")  # gone for good, and said so: its registered file with it
    done = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in done["deleted"]] == [kept]


def test_gc_refuses_an_archive_another_repository_keeps_objects_in(project: Project, tmp_path: Path) -> None:
    # The machine's default archive, or a team's bucket: an unrelated repository shares it.
    mine = rand(20_000, 50)
    project.write("data/a.bin", mine)
    project.commit_all("a")
    project.git("push", "-q", "origin", "main")
    other = new_project(tmp_path, {}, name="other")
    assert other.archive == project.archive
    theirs = rand(20_000, 51)
    other.write("data/b.bin", theirs)
    other.commit_all("b")  # its first commit, never pushed: recorded all the same
    clone = project.clone(tmp_path / "clone")  # another clone of the same repository is not another one
    (clone / "data/c.bin").write_bytes(rand(20_000, 52))
    git(clone, "add", "data/c.bin")
    git(clone, "commit", "-q", "-m", "c")
    git(clone, "push", "-q", "origin", "main")
    age_archive(project)
    for repo in (project, other):
        proc = repo.cvfs("gc", "--archive", "primary", "--apply", check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "error: archive primary also keeps objects of 1 other repository (first commit " in proc.stderr
        assert "hint: collect an archive only one repository uses" in proc.stderr
    assert {ref_of(mine).hex, ref_of(theirs).hex} <= objects(project)
    audit = json.loads(project.cvfs("reconcile", "--orphans", "--json", check=False).stdout)
    orphans = [f for f in audit["findings"] if f["kind"] == "orphan"]
    assert [f["path"].rsplit("/", 1)[-1] for f in orphans] == [ref_of(theirs).hex]
    assert orphans[0]["detail"].endswith("; 1 other repository keeps objects here")

    # The other repository is gone for good, and its record deleted, as the hint says.
    root = other.git("rev-list", "--max-parents=0", "HEAD").stdout.strip()
    (project.archive / "repos" / root).unlink()
    project.git("pull", "-q", "--rebase=false", "origin", "main")
    done = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in done["deleted"]] == [ref_of(theirs).hex]
    assert ref_of(mine).hex in objects(project)


def test_the_archive_record_keeps_no_credential_from_the_remote_url(project: Project) -> None:
    project.git("remote", "set-url", "origin", "https://alice:s3cret-token@example.com:8443/team/a.git")
    project.write("data/a.bin", rand(20_000, 60))
    project.commit_all("a")  # the first commit: the post-commit hook writes the record
    root = project.git("rev-list", "--max-parents=0", "HEAD").stdout.strip()
    record = (project.archive / "repos" / root).read_bytes()
    assert b"alice" not in record and b"s3cret" not in record
    assert json.loads(record) == {"remote": "https://example.com:8443/team/a.git", "roots": [root]}


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "these tests need libfaketime: apt-get install faketime (./install.sh --dev does)"
    return found[0]


def test_gc_goes_by_the_archive_s_clock_when_this_machine_s_runs_ahead(project: Project) -> None:
    # A machine whose clock is a month ahead (a dead CMOS battery, a VM resumed from a snapshot):
    # by its clock an upload made a moment ago, for a push landing now, is a month old.
    project.write("data/a.bin", rand(20_000, 70))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    age_archive(project)
    in_flight = stray(project, rand(9_000, 71), time.time())  # stored just now, by the archive's clock
    ahead = {"LD_PRELOAD": libfaketime(), "FAKETIME": "+30d"}
    done = json.loads(project.cvfs("gc", "--archive", "primary", "--apply", "--json", env=ahead).stdout)
    assert done["deleted"] == [] and done["kept_young"] == 1, done
    assert in_flight in objects(project)
    later = json.loads(project.cvfs("gc", "--archive", "primary", "--grace", "0", "--apply", "--json").stdout)
    assert [o["key"].rsplit("/", 1)[-1] for o in later["deleted"]] == [in_flight]
