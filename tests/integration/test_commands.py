from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import pytest

from tests.conftest import Project, cvfs, git, rand


def test_fetch_fills_the_cache_without_touching_the_work_tree(project: Project, tmp_path: Path) -> None:
    data = rand(5000)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = tmp_path / "lazy"
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    before = (lazy / "data/a.bin").read_bytes()
    out = json.loads(git(lazy, "cvfs", "fetch", "--json", "data").stdout)
    assert out == {"ok": True, "fetched": ["data/a.bin"], "failed": {}}
    assert (lazy / "data/a.bin").read_bytes() == before
    hex_digest = hashlib.sha256(data).hexdigest()
    assert (lazy / ".git/cvfs/objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest).read_bytes() == data


def test_push_json_uploads_what_the_archive_lacks(project: Project) -> None:
    data = rand(5000)
    project.write("data/a.bin", data)
    project.git("add", "-A")
    project.git("commit", "-q", "--no-verify", "-m", "no hook: nothing uploaded yet")
    hex_digest = hashlib.sha256(data).hexdigest()
    assert not project.archive_path(hex_digest).exists()
    first = json.loads(project.cvfs("push", "--json").stdout)
    assert first["ok"] and first["uploaded"] == 1
    assert project.archive_path(hex_digest).read_bytes() == data
    again = json.loads(project.cvfs("push", "--json").stdout)
    assert again["ok"] and again["uploaded"] == 0 and again["already_archived"] == 1  # asked the archive: HEAD hit


def test_git_diff_shows_oid_and_size_not_json(project: Project) -> None:
    project.write("data/a.bin", rand(5000, 1))
    project.commit_all()
    project.write("data/a.bin", rand(6000, 2))
    diff = project.git("diff", "data/a.bin").stdout.splitlines()
    assert "-oid sha256:" + hashlib.sha256(rand(5000, 1)).hexdigest() in diff
    assert "+oid sha256:" + hashlib.sha256(rand(6000, 2)).hexdigest() in diff
    assert "+size 6000 (5.9 KiB)" in diff


def test_progress_is_git_style_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from git_cvfs import output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(output.sys, "stderr", fake)
    monkeypatch.delenv("GIT_CVFS_NO_PROGRESS")
    progress = output.Progress("Uploading objects", 2, 2 << 20)
    progress.advance(1, 1 << 20)
    progress.advance(1, 1 << 20)
    progress.finish()
    last = fake.getvalue().split("\r")[-1]
    assert last.startswith("Uploading objects: 100% (2/2), 2.0 MiB / 2.0 MiB | ") and last.endswith("/s, done.\n")


def test_no_progress_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from git_cvfs import output

    fake = io.StringIO()
    monkeypatch.setattr(output.sys, "stderr", fake)
    progress = output.Progress("Downloading objects", 1)
    progress.advance(1)
    progress.finish()
    assert fake.getvalue() == ""


def test_untrack_removes_its_line_and_a_pattern_not_tracked_is_an_error(project: Project) -> None:
    """`untrack` of a typo said "was not tracked" and exited 0: the user believed the data was
    untracked while 'data/**' still was. Now it is an error naming the tracked patterns, and a
    list holding one unknown pattern changes nothing at all."""
    project.cvfs("track", "models/*.pt")
    before = (project.root / ".gitattributes").read_text()
    assert "models/*.pt filter=cvfs" in before and "data/** filter=cvfs" in before
    for patterns in (["dat/**"], ["models/*.pt", "dat/**"]):
        refused = project.cvfs("untrack", *patterns, check=False)
        assert refused.returncode == 1, refused
        assert "error: not a tracked pattern: 'dat/**'; nothing was untracked" in refused.stderr
        assert "hint: tracked patterns (.gitattributes): 'data/**', 'models/*.pt'" in refused.stderr
        assert (project.root / ".gitattributes").read_text() == before
    done = project.cvfs("untrack", "models/*.pt")
    assert "Untracking 'models/*.pt'" in done.stderr and "git cvfs migrate export" in done.stderr
    after = (project.root / ".gitattributes").read_text()
    assert "models/*.pt" not in after and "data/** filter=cvfs" in after
    assert project.git("check-attr", "filter", "--", "models/w.pt").stdout.strip().endswith("unspecified")
    assert project.git("check-attr", "filter", "--", "data/a.bin").stdout.strip().endswith("cvfs")


def test_track_of_a_directory_is_refused_with_the_pattern_that_reaches_its_files(project: Project) -> None:
    """`git cvfs track models` (or models/, or a shell's unquoted models/* naming its
    subdirectories) wrote a line that matches the directory itself, whose files attributes
    never reach: "Tracking models", exit 0, and every model went into git as a plain blob.
    Such a pattern, a negative one and one with .. are refused, and none of a list is written."""
    (project.root / "models" / "v1").mkdir(parents=True)
    project.write("models/v1/w.pt", rand(30_000, 61))
    before = (project.root / ".gitattributes").read_text()
    for patterns, fix in (
        (["models"], "git cvfs track 'models/**'"),
        (["models/"], "git cvfs track 'models/**'"),
        (["*.csv", "models/v1"], "git cvfs track 'models/v1/**'"),
    ):
        refused = project.cvfs("track", *patterns, check=False)
        assert refused.returncode == 2, refused
        assert (
            "it names a directory" in refused.stderr
            and f"hint: track everything under it with: {fix}" in refused.stderr
        )
        assert (project.root / ".gitattributes").read_text() == before
    for pattern, why in (("!*.pt", "negative patterns"), ("../models/**", ". or ..")):
        refused = project.cvfs("track", pattern, check=False)
        assert refused.returncode == 2 and why in refused.stderr, refused
    # In a subdirectory, a name of a directory there is refused too, and a pattern with a slash
    # means what it would mean to git there (`git add v1/w.pt` in models/ adds models/v1/w.pt).
    refused = cvfs(project.root / "models", "track", "v1", check=False)
    assert refused.returncode == 2 and "git cvfs track 'models/v1/**'" in refused.stderr
    assert "Tracking 'models/v1/*.pt'" in cvfs(project.root / "models", "track", "v1/*.pt").stderr
    assert project.git("check-attr", "filter", "--", "models/v1/w.pt").stdout.strip().endswith("cvfs")
    assert "Untracking 'models/v1/*.pt'" in cvfs(project.root / "models", "untrack", "./v1/*.pt").stderr
    assert (project.root / ".gitattributes").read_text() == before
    # ./ names what is here, as in a shell: at the top, the top only; a path with a slash in it
    # is anchored there already and stays as typed ('data/**' is tracked, not '/data/**' anew).
    done = project.cvfs("track", "./*.csv", "./data/**", "models/v1/*.pt")
    assert "Tracking '/*.csv'" in done.stderr and "'data/**' is already tracked" in done.stderr, done
    assert "Tracking 'models/v1/*.pt'" in done.stderr


def test_status_tells_a_same_size_rewrite_from_a_touch(project: Project) -> None:
    """A model's next checkpoint has the size of the last: `git cvfs status` went by size and
    called it materialized while `git status` said modified. It now asks git which files its
    stat data cannot vouch for and hashes those: other bytes are modified, a touch is not."""
    import os

    old, new = rand(30_000, 11), rand(30_000, 12)
    project.write("data/model.pt", old)
    project.write("data/other.bin", rand(30_000, 13))
    project.commit_all()

    def states() -> dict[str, str]:
        doc = json.loads(project.cvfs("status", "--json").stdout)
        return {f["path"]: f["state"] for f in doc["files"]}

    assert states() == {"data/model.pt": "materialized", "data/other.bin": "materialized"}
    project.write("data/model.pt", new)
    assert project.git("status", "--porcelain").stdout.strip() == "M data/model.pt"
    assert states() == {"data/model.pt": "modified", "data/other.bin": "materialized"}
    listed = project.cvfs("ls-files").stdout.splitlines()
    assert [line.split()[0] for line in listed if line.endswith("data/model.pt")] == ["modified"]
    project.write("data/model.pt", old)  # the committed bytes again, a new mtime
    st = (project.root / "data/other.bin").stat()
    os.utime(project.root / "data/other.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched
    assert states() == {"data/model.pt": "materialized", "data/other.bin": "materialized"}


def test_status_records_a_touched_file_it_found_unchanged(project: Project) -> None:
    """A touched file that still holds its object was hashed by every `git cvfs status` until
    a `git status` refreshed the index. status now records its stat data in git's index, as
    git status does, and only for what it verified: not a file with other bytes, not one
    written within the last second, not while another command holds the index."""
    import os

    def touch(name: str, seconds_ago: float) -> None:
        when = int((time.time() - seconds_ago) * 1e9)
        os.utime(project.root / "data" / name, ns=(when, when))

    for name, seed in (("a-old.bin", 21), ("b-new.bin", 22), ("c-other.bin", 23), ("d-locked.bin", 24)):
        project.write(f"data/{name}", rand(30_000, seed))
        touch(name, 60)
    project.commit_all()

    def stale() -> set[str]:  # (the files the commit wrote in the index's second are set aside too)
        return {p for p in project.git("diff-files", "--name-only").stdout.split() if p.startswith("data/")}

    def states() -> dict[str, str]:
        return {f["path"]: f["state"] for f in json.loads(project.cvfs("status", "--json").stdout)["files"]}

    touch("a-old.bin", 30)  # the same bytes, a new (past) mtime: a copy back from a backup
    touch("b-new.bin", -5)  # the same bytes, written "now" (ahead, so however slow the status start)
    project.write("data/c-other.bin", rand(30_000, 25))  # other bytes of the same size
    touch("c-other.bin", 30)
    assert stale() == {"data/a-old.bin", "data/b-new.bin", "data/c-other.bin"}
    assert states() == {
        "data/a-old.bin": "materialized",
        "data/b-new.bin": "materialized",
        "data/c-other.bin": "modified",
        "data/d-locked.bin": "materialized",
    }
    assert stale() == {"data/b-new.bin", "data/c-other.bin"}
    assert project.git("status", "--porcelain", "--untracked-files=no").stdout.strip() == "M data/c-other.bin"

    touch("d-locked.bin", 30)
    lock = project.root / ".git" / "index.lock"
    lock.write_bytes(b"")  # another git command at work: status reads, and leaves the index to it
    try:
        before = (project.root / ".git" / "index").read_bytes()
        assert states()["data/d-locked.bin"] == "materialized"
        assert (project.root / ".git" / "index").read_bytes() == before
    finally:
        lock.unlink()
    assert "data/d-locked.bin" in stale()
