"""The history rewrite both ways of `migrate` share: which refs, the checks before, one
fast-export | rewrite | fast-import pass, the originals kept, the work tree moved along, and
what the user must force-push.

Nothing moves until the whole stream arrived: fast-import updates refs only at its end, and
is killed on any failure before it. The original of every ref that changed is kept under
refs/cvfs-migrate/<time>/, written before the rewrite starts, so it is undone with one
update-ref however the run ended.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from git_cvfs.core.model.refscan import require_whole_history
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.gitattributes import CommitAttributes, attributes_dir, filter_rules
from git_cvfs.format.ref import Ref
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.git import CatFile, run_git, worktrees
from git_cvfs.local.history import Commit, FastImport, Passthrough, all_blob_sizes, fast_export

BACKUP_NAMESPACE = "refs/cvfs-migrate"
REGULAR = ("100644", "100755")
CACHED_BYTES = 64 << 10
ATTRIBUTES_MAX_BYTES = 100 << 20


class HistoryReader:
    """What deciding about a commit's files needs: every blob's size (one git call), small
    blobs' contents and each commit's .gitattributes, read once however many commits share them."""

    def __init__(self, ws: Workspace) -> None:
        self.sizes = all_blob_sizes(ws.repo)
        self.blobs = CatFile(ws.repo)
        self._content: dict[str, bytes] = {}
        self._rules: dict[str, list[tuple[str, str | None]]] = {}

    def small(self, blob: str) -> bytes:
        """A blob's bytes: pointers, refs, .gitattributes and shards. Those up to CACHED_BYTES
        are kept (commits share them); a shard of a large inventory is read again when asked."""
        if blob in self._content:
            return self._content[blob]
        data = b"".join(self.blobs.stream(blob))
        if len(data) <= CACHED_BYTES:
            self._content[blob] = data
        return data

    def attributes(self, commit: Commit) -> CommitAttributes:
        files = {}
        for path, entry in commit.files.items():
            directory = attributes_dir(path)
            if directory is not None and entry.mode in REGULAR:
                if entry.blob not in self._rules:
                    # git ignores a .gitattributes past 100 MiB, and so does this: never held whole
                    big = self.sizes.get(entry.blob, 0) > ATTRIBUTES_MAX_BYTES
                    self._rules[entry.blob] = [] if big else filter_rules(self.small(entry.blob))
                files[directory] = self._rules[entry.blob]
        return CommitAttributes(files)

    def close(self) -> None:
        self.blobs.close()


def cache_chunks(ws: Workspace, ref: Ref) -> Iterator[bytes]:
    with open(ws.cache.object_path(ref.hex), "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


@dataclass
class RefChange:
    name: str
    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {"ref": self.name, "old": self.old, "new": self.new}


@dataclass
class RewriteResult:
    commits: int = 0  # commits in the rewritten range
    changed: int = 0  # of those, commits whose id changed
    refs: list[RefChange] = field(default_factory=list)
    backup: str = ""
    push: list[str] = field(default_factory=list)
    worktree_updated: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "commits": self.commits,
            "commits_changed": self.changed,
            "refs": [r.to_json() for r in self.refs],
            "originals_kept_under": self.backup if self.refs else None,
            "push": self.push,
            "worktree_updated": self.worktree_updated,
        }


def select_revs(ws: Workspace, revs: Sequence[str], *, everything: bool) -> list[str]:
    """The revisions to rewrite: --everything is every local branch and tag (remote-tracking refs
    record what the remote has, and stay so); none named is the current branch."""
    if everything:
        if revs:
            raise UsageError("--everything and revisions were both given", hint="use one of them")
        return ["--branches", "--tags"]
    for rev in revs:
        if rev.startswith("-") and rev not in ("--branches", "--tags"):
            raise UsageError(f"unknown option {rev!r}", hint="name branches or tags, or --everything")
    if revs:
        for rev in revs:
            tip = rev.split("..")[-1].lstrip("^") if ".." in rev else rev
            if rev.startswith("^") or rev.startswith("--"):
                continue
            full = run_git(
                ["rev-parse", "--symbolic-full-name", "--end-of-options", tip or "HEAD"], cwd=ws.repo.root, check=False
            )
            if full.returncode != 0 or not full.stdout.strip().startswith(b"refs/"):
                raise UsageError(
                    f"{tip!r} is not a branch or tag",
                    hint="a rewrite moves refs: name branches or tags (`git branch -a`)",
                )
        return list(revs)
    head = run_git(["symbolic-ref", "-q", "HEAD"], cwd=ws.repo.root, check=False)
    if head.returncode != 0:
        raise UsageError("HEAD is detached: no branch to rewrite", hint="check out a branch, or name the branches")
    return [head.stdout.decode().strip()]


def preflight(ws: Workspace) -> None:
    """A rewrite needs a work tree with nothing uncommitted, and git-cvfs installed here (the
    work tree is moved to the rewritten commit through its filter)."""
    root = ws.repo.root
    for state in ("MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD", "REVERT_HEAD", "BISECT_LOG"):
        if (ws.repo.git_dir / state).exists():
            raise CvfsError("a merge, rebase, cherry-pick or bisect is in progress", hint="finish or abort it first")
    if run_git(["config", "filter.cvfs.process"], cwd=root, check=False).returncode != 0:
        raise UsageError("git-cvfs is not installed in this repository", hint="git cvfs init")
    # Rewritten here, the oldest commit of a shallow clone would become a root commit, and
    # the force-push the rewrite asks for would cut the remote's history there.
    require_whole_history(
        ws.repo, "a history rewrite", "its oldest commit here would lose its parents; force-pushed, so would the remote"
    )
    status = run_git(["status", "--porcelain", "--untracked-files=no", "--ignore-submodules"], cwd=root)
    if status.stdout.strip():
        changed = status.stdout.decode(errors="replace").splitlines()
        raise CvfsError(
            f"the work tree has uncommitted changes ({len(changed)} path(s), e.g. {changed[0][3:]})",
            hint="commit or stash them first: a rewrite moves the work tree to the new commits",
        )


def scan(ws: Workspace, revs: Sequence[str], visit: Callable[[Commit], None]) -> tuple[int, set[str]]:
    """Walk the commits a rewrite of revs would write (each commit's whole tree), and return
    how many there are and the refs the rewrite would move."""
    refs: set[str] = set()
    count = 0
    with fast_export(ws.repo, revs) as stream:
        for command in stream:
            if isinstance(command, Commit):
                count += 1
                refs.add(command.ref)
                visit(command)
            elif command.ref:
                refs.add(command.ref)
    if count == 0:
        raise UsageError(f"no commits in {' '.join(revs)}", hint="name the branches to rewrite, or --everything")
    return count, refs


def rewrite(
    ws: Workspace, revs: Sequence[str], refs: set[str], change: Callable[[Commit, FastImport], None]
) -> RewriteResult:
    """One pass: every commit of revs through change (which edits commit.files, writing new
    blobs to the FastImport it is given), into fast-import. Then the work tree follows HEAD."""
    repo = ws.repo
    _refuse_other_worktrees(ws, refs)
    result = RewriteResult(backup=_backup_name(ws))
    old = _ref_values(ws, refs)
    head_ref = run_git(["symbolic-ref", "-q", "HEAD"], cwd=repo.root, check=False).stdout.decode().strip()
    old_head = run_git(["rev-parse", "--verify", "-q", "HEAD"], cwd=repo.root, check=False).stdout.decode().strip()
    _update_refs(ws, [f"create {result.backup}/{name.removeprefix('refs/')} {oid}" for name, oid in old.items()])
    importer = FastImport(repo)
    originals: dict[str, str] = {}
    try:
        with fast_export(repo, revs) as stream:
            for command in stream:
                if isinstance(command, Passthrough):
                    importer.write(command.data)
                    continue
                change(command, importer)
                importer.commit(command)
                originals[command.mark] = command.original
                result.commits += 1
        marks = importer.finish()
    except BaseException:
        importer.abort()
        _update_refs(ws, [f"delete {result.backup}/{name.removeprefix('refs/')}" for name in old])
        raise
    result.changed = sum(1 for mark, oid in originals.items() if marks.get(mark, oid) != oid)
    new = _ref_values(ws, refs)
    unchanged = []
    for name in sorted(old):
        if new.get(name) != old[name]:
            result.refs.append(RefChange(name, old[name], new.get(name, "")))
        else:
            unchanged.append(f"delete {result.backup}/{name.removeprefix('refs/')}")
    _update_refs(ws, unchanged)
    if head_ref in new and new[head_ref] != old.get(head_ref):
        # git's own two-tree checkout: only what differs is written, through the filters the
        # new commit's attributes name (the work tree was clean, so nothing is lost)
        run_git(["read-tree", "-m", "-u", old_head, new[head_ref]], cwd=repo.root)
        result.worktree_updated = True
    result.push = push_commands(ws, result.refs)
    return result


def _ref_values(ws: Workspace, refs: set[str]) -> dict[str, str]:
    if not refs:
        return {}
    out = run_git(["for-each-ref", "--format=%(refname) %(objectname)", *sorted(refs)], cwd=ws.repo.root).stdout
    values = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        name, _, oid = line.rpartition(" ")
        if name in refs:
            values[name] = oid
    return values


def _update_refs(ws: Workspace, commands: list[str]) -> None:
    if commands:
        run_git(["update-ref", "--stdin"], cwd=ws.repo.root, input=("\n".join(commands) + "\n").encode())


def push_commands(ws: Workspace, changes: Sequence[RefChange]) -> list[str]:
    """What publishes the rewrite: each branch to the remote it tracks, tags to the remote
    branches go to (or the only remote); force, since history changed."""
    root = ws.repo.root
    remotes = run_git(["remote"], cwd=root).stdout.decode().split()
    if not remotes:
        return []
    branches: dict[str, list[str]] = {}
    tags: list[str] = []
    for change in changes:
        if change.name.startswith("refs/heads/"):
            branch = change.name.removeprefix("refs/heads/")
            remote = run_git(["config", f"branch.{branch}.remote"], cwd=root, check=False).stdout.decode().strip()
            if remote not in remotes:  # no upstream set: the remotes that have a branch of that name
                remote = next((r for r in remotes if _has_ref(ws, f"refs/remotes/{r}/{branch}")), "")
            if remote:
                branches.setdefault(remote, []).append(branch)
        elif change.name.startswith("refs/tags/"):
            tags.append(change.name.removeprefix("refs/tags/"))
    # Quoted for a shell: branch and remote names come from the repository (a branch may be
    # called `x;rm -rf ~`), and these lines are meant to be pasted.
    commands = [
        shlex.join(["git", "push", "--force-with-lease", remote, *names]) for remote, names in sorted(branches.items())
    ]
    if tags:
        remote = "origin" if "origin" in remotes else (next(iter(branches)) if branches else remotes[0])
        commands.append(shlex.join(["git", "push", "--force", remote, *[w for t in tags for w in ("tag", t)]]))
    return commands


def _has_ref(ws: Workspace, name: str) -> bool:
    return run_git(["show-ref", "--verify", "--quiet", name], cwd=ws.repo.root, check=False).returncode == 0


def _backup_name(ws: Workspace) -> str:
    stamp = f"{BACKUP_NAMESPACE}/{time.strftime('%Y%m%d-%H%M%S')}"
    name, n = stamp, 1
    while run_git(["for-each-ref", "--count=1", f"{name}/"], cwd=ws.repo.root).stdout.strip():
        n += 1
        name = f"{stamp}-{n}"
    return name


def _refuse_other_worktrees(ws: Workspace, refs: set[str]) -> None:
    """A branch checked out in another worktree would be moved under that worktree's feet: its
    index and files would stay at the old commit, and every managed file would look changed."""
    here = os.path.realpath(ws.repo.root)
    for tree in worktrees(ws.repo):
        if tree.branch in refs and os.path.realpath(tree.path) != here:
            raise CvfsError(
                f"{tree.branch} is checked out in another worktree ({os.path.realpath(tree.path)})",
                hint="switch that worktree to another branch (or remove it) first, then run this again",
            )
