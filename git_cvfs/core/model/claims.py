"""Which repositories keep objects in an archive.

An archive is often shared: the machine's default archive by every repository on it that
names none, a team's bucket by several projects. Objects are content-addressed, so nothing
in an object says whose it is, and `git cvfs gc` in one repository sees only that
repository's commits. So each repository that archives objects records itself in the
archive, one small object under REPOS_PREFIX named after a root commit of its history
(clones and forks of one repository share it), written once per archive from each clone;
gc refuses to collect an archive holding a record whose root commit its own history lacks.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.parse
from pathlib import Path

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import ArchiveError, CvfsError
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.git import Repo, run_git
from git_cvfs.remote.archive import AlreadyStored, Archive

REPOS_PREFIX = "repos/"
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
MAX_RECORD = 4096  # a record is a root commit and a URL: anything longer is not read whole
CLAIM_DUE = "claim-due"


def roots(repo: Repo, revs: list[str]) -> set[str]:
    """The root commits (no parents) of the history of revs."""
    proc = run_git(["--no-replace-objects", "rev-list", "--max-parents=0", *revs], cwd=repo.root, check=False)
    return set(proc.stdout.decode().split()) if proc.returncode == 0 else set()


def _shown_url(url: str) -> str:
    """A remote's URL without any user name or password in it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return url.rpartition("@")[2]  # user@host:path: the host and path


def remote_urls(repo: Repo) -> dict[str, str]:
    """Each git remote's URL as a record shows it (_shown_url), by remote name."""
    names = run_git(["remote"], cwd=repo.root, check=False).stdout.decode().split()
    urls = {}
    for name in names:
        url = run_git(["remote", "get-url", name], cwd=repo.root, check=False).stdout.decode().strip()
        if url:
            urls[name] = _shown_url(url)
    return urls


def _remote_url(repo: Repo) -> str:
    """Where this repository is shared from, for a record: origin's URL, or the first remote's."""
    urls = remote_urls(repo)
    return urls.get("origin") or next(iter(urls.values()), "")


def _claimed_path(ws: Workspace, name: str) -> Path:
    log = ArchivedLog(ws.repo.cvfs_dir, ws.settings.archives[name])
    return log.path.with_name(log.path.name + ".repository")


def claim_due_path(ws: Workspace) -> Path:
    """Left by an upload made before the first commit: the post-commit hook records the
    repository then (core/plumbing/hooks.py; commands/hook_gate.py looks for it by name)."""
    return ws.repo.git_dir / "cvfs" / CLAIM_DUE


def claim(ws: Workspace, name: str, archive: Archive) -> None:
    """Record this repository in the archive, unless this clone did already (one PUT per
    archive per clone). Before the first commit there is no root commit to record: the
    post-commit hook records it, once the commit exists. Failing to write the record is
    said, not fatal: the upload itself succeeded."""
    done = _claimed_path(ws, name)
    if done.exists():
        return
    mine = sorted(roots(ws.repo, ["HEAD"])) if ws.repo.has_head() else []
    if not mine:
        due = claim_due_path(ws)
        due.parent.mkdir(parents=True, exist_ok=True)
        due.touch()
        return
    record = json.dumps({"remote": _remote_url(ws.repo), "roots": mine}, sort_keys=True).encode() + b"\n"
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(record)
        tmp = Path(f.name)
    try:
        try:
            archive.put_file(REPOS_PREFIX + mine[0], tmp, len(record), None)
        except AlreadyStored:
            pass  # another clone of this repository wrote it
    except ArchiveError as exc:
        from git_cvfs import output

        output.warn(
            f"could not record this repository in archive {name}: {exc.message}",
            hint=f"`git cvfs gc` in another repository sharing {name} may then delete objects only this one needs",
        )
        return
    finally:
        os.unlink(tmp)
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(" ".join(mine) + "\n")


def claim_all(ws: Workspace) -> None:
    """Record this repository in every archive it names (the post-commit hook, after a first
    commit whose objects were archived before there was a commit to name it by)."""
    due = claim_due_path(ws)
    for name in ws.archive_names:
        try:
            claim(ws, name, ws.archive(name))
        except CvfsError as exc:
            from git_cvfs import output

            output.warn(f"could not record this repository in archive {name}: {exc.message}", hint=exc.hint)
            return  # the next commit tries again
    due.unlink(missing_ok=True)


def other_repositories(archive: Archive, ours: set[str], urls: set[str]) -> list[str]:
    """The repositories recorded in the archive that are not this one, each described for a
    message (its root commit and where it is shared from, as it said). A record is this
    repository's when its root commit is in our history (a clone, a fork), or when it names
    one of our remotes (this repository before its history was squashed or rewritten)."""
    others = []
    for info in archive.list(REPOS_PREFIX):
        root = info.key.rsplit("/", 1)[-1]
        if root in ours:
            continue
        said = _remote_said(archive, info.key, info.size)
        if said and said in urls:
            continue
        said = "".join(c for c in said if c.isprintable())[:200]
        name = root[:12] if _COMMIT.fullmatch(root) else repr(root[:40])
        others.append(f"first commit {name}" + (f", {said}" if said else ""))
    return others


def _remote_said(archive: Archive, key: str, size: int) -> str:
    """The URL a record gives, or "" (too large, unreadable, or not a record): only shown."""
    if size > MAX_RECORD:
        return ""
    with tempfile.TemporaryFile() as f:
        try:
            archive.download_to(key, f, size)
            f.seek(0)
            said = json.loads(f.read(MAX_RECORD)).get("remote", "")
        except (CvfsError, ValueError, AttributeError, UnicodeDecodeError):
            return ""
    return said if isinstance(said, str) else ""


def refuse_if_shared(archive: Archive, name: str, ours: set[str], urls: set[str]) -> None:
    others = other_repositories(archive, ours, urls)
    if others:
        listed = "; ".join(others[:3]) + (f"; and {len(others) - 3} more" if len(others) > 3 else "")
        raise CvfsError(
            f"archive {name} also keeps objects of {len(others)} other repositor{'y' if len(others) == 1 else 'ies'} "
            f"({listed}): gc here cannot see what their commits need",
            hint=f"collect an archive only one repository uses; if one of those is gone for good, "
            f"delete its record ({REPOS_PREFIX}<first commit> in the archive) and run gc again",
        )
