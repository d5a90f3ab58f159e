from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from git_cvfs.local import index_stat
from git_cvfs.local.git import git_blob_id
from git_cvfs.local.index_stat import (
    IndexLockedError,
    patch_index_stat,
    record_hashed,
    settle_racy,
    unchanged_since_indexed,
)
from tests.conftest import git


def _debug(repo: Path, path: str) -> str:
    return git(repo, "ls-files", "--debug", path).stdout


def test_patch_updates_only_the_named_entry_and_keeps_the_index_valid(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    long_ago = time.time_ns() - 20_000_000_000  # none racily clean: those a rewrite sets aside
    for name in ("a", "b", "dir/c"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name)
        os.utime(repo / name, ns=(long_ago, long_ago))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x")
    before_b = _debug(repo, "b")
    # Replace a's bytes with same-content file, new inode and older mtime: stat differs from the index.
    (repo / "a").unlink()
    (repo / "a").write_text("a")
    past = time.time_ns() - 5_000_000_000
    os.utime(repo / "a", ns=(past, past))
    assert patch_index_stat(repo / ".git" / "index", repo, {"a": os.lstat(repo / "a")}) == 1
    st = os.lstat(repo / "a")
    debug = _debug(repo, "a")
    assert f"ino: {st.st_ino}" in debug and f"mtime: {int(st.st_mtime)}:" in debug
    assert _debug(repo, "b") == before_b
    git(repo, "fsck", "--no-progress")  # index checksum still right
    assert git(repo, "status", "--porcelain").stdout == ""
    assert not (repo / ".git" / "index.lock").exists()


def test_patch_waits_a_bounded_time_for_a_locked_index_then_says_so(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "a").write_text("a")
    git(repo, "add", "a")
    (repo / ".git" / "index.lock").write_text("")
    before = (repo / ".git" / "index").read_bytes()
    started = time.monotonic()
    with pytest.raises(IndexLockedError, match=r"index\.lock exists") as raised:
        patch_index_stat(repo / ".git" / "index", repo, {"a": os.lstat(repo / "a")}, lock_wait=0.3)
    assert 0.3 <= time.monotonic() - started < 3
    assert raised.value.hint and "remove" in raised.value.hint and "index.lock" in raised.value.hint
    assert (repo / ".git" / "index").read_bytes() == before
    assert (repo / ".git" / "index.lock").exists()  # someone else's lock is not ours to remove


def test_patch_leaves_an_entry_whose_file_changed_after_it_was_written(tmp_path: Path) -> None:
    """The stat recorded is the one taken when git-cvfs put the file in place: an edit after
    that (same size, even) is left for git to see."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    for name in ("a", "b"):
        (repo / name).write_text(name * 10)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "x")
    written = {}
    for name in ("a", "b"):
        (repo / name).unlink()
        (repo / name).write_text(name * 10)
        past = time.time_ns() - 5_000_000_000
        os.utime(repo / name, ns=(past, past))
        written[name] = os.lstat(repo / name)
    with open(repo / "b", "r+") as f:  # edited after it was written, before the index is told
        f.write("B")
    assert patch_index_stat(repo / ".git" / "index", repo, written) == 1
    assert git(repo, "status", "--porcelain").stdout == " M b\n"


def test_patch_works_on_index_version_4(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "config", "index.version", "4")
    for name in ("data/aa", "data/ab", "data/b"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name)
    git(repo, "add", ".")
    (repo / "data/ab").unlink()
    (repo / "data/ab").write_text("data/ab")
    assert patch_index_stat(repo / ".git" / "index", repo, {"data/ab": os.lstat(repo / "data/ab")}) == 1
    assert f"ino: {os.lstat(repo / 'data/ab').st_ino}" in _debug(repo, "data/ab")
    git(repo, "status", "--porcelain")


def test_record_hashed_leaves_an_entry_staged_anew_since_the_hash(tmp_path: Path) -> None:
    """status hashed the file against the blob it listed; a `git add` of other bytes meanwhile
    makes the entry another blob, and the file's stat must not be recorded as vouching for it."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    for name in ("a", "b"):
        (repo / name).write_text(name * 10)
    git(repo, "add", ".")
    blobs = {line.split("\t")[1]: line.split()[1] for line in git(repo, "ls-files", "-s").stdout.splitlines()}
    hashed = {}
    for name in ("a", "b"):
        past = time.time_ns() - 5_000_000_000
        os.utime(repo / name, ns=(past, past))
        hashed[name] = (blobs[name], os.lstat(repo / name))
    hashed["b"] = (git_blob_id(b"other"), hashed["b"][1])  # the entry is not the blob that was hashed
    started = time.time_ns()
    assert record_hashed(repo / ".git" / "index", repo, hashed, written_before=started) == 1
    assert git(repo, "diff-files", "--name-only").stdout == "b\n"
    git(repo, "fsck", "--no-progress")


def _racy_repo(tmp_path: Path, content: bytes = b"x" * 4096) -> Path:
    """One committed file whose index entry is racily clean: the index mtime is set into the
    file's second, as when git writes a file and its index within one second."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "f").write_bytes(content)
    git(repo, "add", "f")
    index = repo / ".git" / "index"
    mtime = os.lstat(repo / "f").st_mtime_ns
    os.utime(index, ns=(mtime, mtime))
    return repo


def _entry_mtime(repo: Path, path: str) -> int:
    return int(_debug(repo, path).split("mtime: ")[1].split(":")[0])


def _as_written(repo: Path, *paths: str) -> dict[str, tuple[str, int]]:
    """What a filter that gave git these files' bytes knows: the blob it was asked for, and the size."""
    return {p: (git_blob_id((repo / p).read_bytes()), (repo / p).stat().st_size) for p in paths}


def test_settle_backdates_a_racy_untouched_file_and_records_it(tmp_path: Path) -> None:
    repo = _racy_repo(tmp_path)
    index = repo / ".git" / "index"
    before = os.lstat(repo / "f")
    assert _entry_mtime(repo, "f") >= int(os.stat(index).st_mtime)  # racy: git would re-read it

    assert settle_racy(index, repo, _as_written(repo, "f")) == 1

    after = os.lstat(repo / "f")
    assert after.st_mtime_ns == before.st_mtime_ns - 1_000_000_000
    assert (repo / "f").read_bytes() == b"x" * 4096
    assert _entry_mtime(repo, "f") == int(after.st_mtime) < int(os.stat(index).st_mtime)
    assert git(repo, "status", "--porcelain").stdout == "A  f\n"
    git(repo, "fsck", "--no-progress")


@pytest.mark.parametrize("value", ["0", "false"])
def test_no_optional_locks_leaves_the_index_to_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """`git --no-optional-locks` (GIT_OPTIONAL_LOCKS=0, which editors set for the status they
    run in the background): settling and status's record are savings, not the command's job,
    and taking index.lock for them could make the user's own `git commit` fail."""
    repo = _racy_repo(tmp_path)
    index = repo / ".git" / "index"
    before = index.read_bytes()
    monkeypatch.setenv("GIT_OPTIONAL_LOCKS", value)
    assert settle_racy(index, repo, _as_written(repo, "f")) == 0
    st = os.lstat(repo / "f")
    blob = git_blob_id((repo / "f").read_bytes())
    assert record_hashed(index, repo, {"f": (blob, st)}, written_before=st.st_mtime_ns + 1) == 0
    assert index.read_bytes() == before
    monkeypatch.setenv("GIT_OPTIONAL_LOCKS", "1")
    assert settle_racy(index, repo, _as_written(repo, "f")) == 1


def test_settle_leaves_a_file_changed_after_git_wrote_it(tmp_path: Path) -> None:
    # Same size, new bytes, written after git recorded the stat: the exact case git's
    # racy check exists for. Settling it would hide the change from git for good.
    repo = _racy_repo(tmp_path)
    index = repo / ".git" / "index"
    git(repo, "commit", "-q", "-m", "x")
    mtime = os.lstat(repo / "f").st_mtime_ns
    os.utime(index, ns=(mtime, mtime))
    written = _as_written(repo, "f")
    (repo / "f").write_bytes(b"y" * 4096)
    os.utime(repo / "f", ns=(mtime, mtime))  # even with git's recorded mtime put back

    assert settle_racy(index, repo, written) == 0
    assert os.lstat(repo / "f").st_mtime_ns == mtime
    assert git(repo, "status", "--porcelain").stdout == " M f\n"


def test_settle_leaves_entries_that_are_not_racy(tmp_path: Path) -> None:
    repo = _racy_repo(tmp_path)
    index = repo / ".git" / "index"
    later = os.lstat(repo / "f").st_mtime_ns + 3_000_000_000
    os.utime(index, ns=(later, later))
    before = os.lstat(repo / "f").st_mtime_ns
    index_bytes = index.read_bytes()
    assert settle_racy(index, repo, {**_as_written(repo, "f"), "not-in-index": ("0" * 40, 1)}) == 0
    assert os.lstat(repo / "f").st_mtime_ns == before
    assert index.read_bytes() == index_bytes


def test_settle_leaves_an_entry_for_other_bytes_than_the_filter_gave(tmp_path: Path) -> None:
    # The index entry must be the blob the filter was asked for, with the size it gave.
    repo = _racy_repo(tmp_path)
    index = repo / ".git" / "index"
    blob, size = _as_written(repo, "f")["f"]
    before = os.lstat(repo / "f").st_mtime_ns
    assert settle_racy(index, repo, {"f": ("1" * 40, size)}) == 0
    assert settle_racy(index, repo, {"f": (blob, size + 1)}) == 0
    assert os.lstat(repo / "f").st_mtime_ns == before


def test_settle_walks_directories_in_index_order_and_skips_a_directory_gone(tmp_path: Path) -> None:
    # Index order interleaves directories: "a/b.txt" < "a/b/x" < "a/c" ('.' sorts before '/'),
    # so "a" comes back after "a/b". A directory replaced by a file since git wrote into it
    # loses its entries quietly; every other file is still settled.
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    paths = ["top", "a/b.txt", "a/b/x", "a/b/y", "a/c", "gone/f", "z/deep/er/f"]
    for p in paths:
        (repo / p).parent.mkdir(parents=True, exist_ok=True)
        (repo / p).write_bytes(p.encode())
    git(repo, "add", ".")
    index = repo / ".git" / "index"
    oldest = min(os.lstat(repo / p).st_mtime_ns for p in paths)
    os.utime(index, ns=(oldest, oldest))  # every entry racy
    written = _as_written(repo, *paths)
    (repo / "gone/f").unlink()
    (repo / "gone").rmdir()
    (repo / "gone").write_bytes(b"now a file")

    assert settle_racy(index, repo, written) == len(paths) - 1
    for p in paths:
        if p != "gone/f":
            assert _entry_mtime(repo, p) == int(os.lstat(repo / p).st_mtime) < int(os.stat(index).st_mtime), p
    assert git(repo, "status", "--porcelain").stdout.splitlines() == [
        "A  a/b.txt",
        "A  a/b/x",
        "A  a/b/y",
        "A  a/c",
        "AD gone/f",
        "A  top",
        "A  z/deep/er/f",
        "?? gone",
    ]


def test_stat_in_the_last_nanoseconds_of_a_second_is_read_as_git_records_it(tmp_path: Path) -> None:
    # A float st_mtime of T.999999999 rounds to T+1: read that way, a file git recorded
    # would look changed, and an index written in second T would look a second newer,
    # so an entry racy in T would pass for settled.
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "a").write_text("a")
    (repo / "b").write_text("b")
    second = time.time_ns() // 1_000_000_000 - 100
    os.utime(repo / "a", ns=(second * 1_000_000_000, second * 1_000_000_000 + 999_999_999))
    os.utime(repo / "b", ns=(second * 1_000_000_000, second * 1_000_000_000 + 500_000_000))
    git(repo, "add", "a", "b")
    index = repo / ".git" / "index"
    assert unchanged_since_indexed(index, repo, ["a", "b"]) == {"a", "b"}
    # The index as if written in their second, at its last nanosecond: both are racy now.
    os.utime(index, ns=(second * 1_000_000_000, second * 1_000_000_000 + 999_999_999))
    assert unchanged_since_indexed(index, repo, ["a", "b"]) == set()


def test_settle_skips_a_file_removed_after_its_check_and_settles_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file is removed between settling's lstat (it matched git's stat) and its utime,
    # as a user or a script may do right after a checkout. That entry is left for git to
    # see as deleted; the settle goes on for the others instead of giving up with a warning.
    repo = _racy_repo(tmp_path)
    (repo / "g").write_bytes(b"y" * 4096)
    git(repo, "add", "g")
    index = repo / ".git" / "index"
    newest = max(os.lstat(repo / p).st_mtime_ns for p in ("f", "g"))
    oldest = min(os.lstat(repo / p).st_mtime_ns for p in ("f", "g"))
    os.utime(index, ns=(oldest, oldest))  # both racy, even when they were written a second apart
    written = _as_written(repo, "f", "g")
    real_set_mtime = index_stat._DirFds.set_mtime

    def removed_first(self: index_stat._DirFds, name: bytes, st: os.stat_result, mtime_ns: int) -> os.stat_result:
        if name == b"f":
            (repo / "f").unlink()
        return real_set_mtime(self, name, st, mtime_ns)

    monkeypatch.setattr(index_stat._DirFds, "set_mtime", removed_first)
    assert settle_racy(index, repo, written) == 1
    assert _entry_mtime(repo, "g") == os.lstat(repo / "g").st_mtime_ns // 1_000_000_000 < newest // 1_000_000_000
    assert sorted(git(repo, "status", "--porcelain").stdout.splitlines()) == ["A  g", "AD f"]


def test_a_split_index_vouches_from_its_shared_index_only_for_the_blob_staged_now(tmp_path: Path) -> None:
    """A split index keeps most entries in its shared index: read alone, the split part
    vouched for none of them, and offload, guard and reconcile hashed every file. They are
    looked up in the shared index, and vouched for only when the shared entry is the blob
    the index holds now: one staged anew since (other bytes, the file untouched) replaces
    it in the split part, and the shared entry's stat no longer speaks for the file."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "config", "splitIndex.maxPercentChange", "100")  # the split part is kept, however much it holds
    past = time.time_ns() - 10_000_000_000
    for name in ("a", "b", "c"):
        (repo / name).write_text(name * 10)
        os.utime(repo / name, ns=(past, past))
    git(repo, "add", ".")
    git(repo, "update-index", "--split-index")
    (repo / "d").write_text("d" * 10)
    os.utime(repo / "d", ns=(past, past))
    git(repo, "add", "d")  # in the split part
    (tmp_path / "other").write_text("other bytes")
    other = git(repo, "hash-object", "-w", str(tmp_path / "other")).stdout.strip()
    git(repo, "update-index", "--cacheinfo", f"100644,{other},b")  # staged anew, the file as it was
    (repo / "c").write_text("C" * 10)  # changed since it was indexed
    shared = list((repo / ".git").glob("sharedindex.*"))
    assert len(shared) == 1 and "link" in (repo / ".git" / "index").read_bytes().decode("latin-1")
    blobs = {line.split("\t")[1]: line.split()[1] for line in git(repo, "ls-files", "-s").stdout.splitlines()}
    index = repo / ".git" / "index"
    paths = ["a", "b", "c", "d"]
    assert unchanged_since_indexed(index, repo, paths) == {"d"}  # the split part alone
    assert unchanged_since_indexed(index, repo, paths, blobs.__getitem__) == {"a", "d"}
    assert git(repo, "diff-files", "--name-only").stdout.split() == ["b", "c"]  # git agrees


def _rewritten_in_a_later_second(tmp_path: Path, split: bool) -> tuple[Path, dict[str, os.stat_result]]:
    """A repository whose file b is racily clean (written in the index's second) and then
    rewritten in that second with the same size (its mtime kept; ctime is not trusted here,
    as core.trustctime=false tells git), and whose file a git-cvfs has rewritten, to record."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "config", "core.trustctime", "false")
    git(repo, "config", "splitIndex.maxPercentChange", "100")
    past = time.time_ns() - 20_000_000_000
    for name in ("a", "b"):
        (repo / name).write_text(name * 10)
        os.utime(repo / name, ns=(past, past))
    if split:  # b in the shared index, a added after it (in the split part, by its name)
        git(repo, "add", "b")
        git(repo, "update-index", "--split-index")
        git(repo, "add", "a")
        assert list((repo / ".git").glob("sharedindex.*"))
    else:
        git(repo, "add", ".")
    index = repo / ".git" / "index"
    for shared in (repo / ".git").glob("sharedindex.*"):
        os.utime(shared, ns=(past, past))
    os.utime(index, ns=(past, past))  # b was written in the index's second: racily clean
    (repo / "b").write_text("B" * 10)  # in that second, the same size
    os.utime(repo / "b", ns=(past, past))
    assert git(repo, "diff-files", "--name-only").stdout == "b\n"  # git looks at b's bytes
    (repo / "a").unlink()
    (repo / "a").write_text("a" * 10)
    earlier = past - 5_000_000_000
    os.utime(repo / "a", ns=(earlier, earlier))
    return repo, {"a": os.lstat(repo / "a")}


def test_writing_the_index_keeps_a_racily_clean_entry_from_being_trusted(tmp_path: Path) -> None:
    """Written anew, the index has a later mtime, and git would take b's stat on trust: a
    rewrite of b in the index's second would go unseen, and a checkout would overwrite it as
    unchanged. As git does when it writes the index, such an entry's size is set to 0."""
    repo, written = _rewritten_in_a_later_second(tmp_path, split=False)
    assert patch_index_stat(repo / ".git" / "index", repo, written) == 1
    assert git(repo, "diff", "--name-only").stdout == "b\n"  # b's bytes, compared: a is clean
    git(repo, "fsck", "--no-progress")


def test_a_split_index_with_a_racy_shared_entry_is_left_as_it_is(tmp_path: Path) -> None:
    """The shared index is not rewritten here, so its racy entry cannot be set aside: the
    index is left untouched, and git still looks at b's bytes."""
    repo, written = _rewritten_in_a_later_second(tmp_path, split=True)
    before = (repo / ".git" / "index").read_bytes()
    assert patch_index_stat(repo / ".git" / "index", repo, written) == 0
    assert (repo / ".git" / "index").read_bytes() == before
    assert git(repo, "diff", "--name-only").stdout == "b\n"
