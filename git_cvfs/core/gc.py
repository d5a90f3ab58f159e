"""gc: delete archived objects nothing can still need. A dry run unless applied.

An object is deleted only when all of these hold, checked against what the archive lists:
  - no commit reachable from any ref references it: every ref of the named git remotes
    (fetched first; gc refuses when it cannot fetch one), and every local branch, tag,
    reflog entry and index (work that was never pushed counts too); commits as stored, not
    as `git replace` shows them, and never in a shallow clone or behind a grafts file
    (gc refuses there: commits it cannot see may need objects);
  - no inventory row on those refs' tips, nor in any work tree of this repository, names
    it (gitignored data is recorded only there; gc refuses when a worktree's directory is gone);
  - the archive stored it longer ago than the grace period (an upload for a commit being
    pushed somewhere right now is young), by the archive's clock or this machine's, whichever
    is behind: a clock ahead by more than the grace would make every upload look old;
  - no other repository keeps objects in the archive: each one that archives records itself
    there (core/model/claims.py), and gc refuses an archive holding another's record.
Before it looks at ages (applied), gc writes a new epoch marker into the archive (GC_EPOCH_KEY),
whose date is the archive's clock; and every
machine's pre-push then stops trusting its own record of what the archive held and asks the
archive again, so a push after gc re-uploads what gc took. Then it fetches the remotes again
and keeps anything the new refs reference. What is left: a push that had asked the archive
before the marker was written and lands after gc's second fetch (docs/keeping-the-archive-lean.md).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from git_cvfs.core.model.claims import claim, refuse_if_shared, remote_urls, roots
from git_cvfs.core.model.refscan import read_blobs, refs_in_history, require_whole_history
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.inventory import SHARD_DIR, parse_shard
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.local.git import run_git, split_z
from git_cvfs.local.index_store import hexes_in_every_worktree
from git_cvfs.remote.archive import GC_EPOCH_KEY, Archive, ObjectInfo, hex_of_key

# Where gc fetches every ref of each remote (refs/pull/* included), for the length of a run.
GC_REFS = "refs/cvfs-gc/"


@dataclass
class GcResult:
    archive: str
    dry_run: bool
    remotes: list[str]
    grace: float
    deleted: list[ObjectInfo] = field(default_factory=list)  # or, in a dry run, what would be
    referenced: int = 0  # objects kept: a commit or an inventory row needs them
    young: int = 0  # objects kept: stored within the grace period
    rescued: int = 0  # deletable at first, referenced by the refs fetched again just before deleting
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be deleted

    @property
    def freed(self) -> int:
        return sum(info.size for info in self.deleted)

    def to_json(self) -> dict[str, object]:
        return {
            "archive": self.archive,
            "dry_run": self.dry_run,
            "remotes": self.remotes,
            "grace_seconds": self.grace,
            "would_delete" if self.dry_run else "deleted": [{"key": i.key, "size": i.size} for i in self.deleted],
            "bytes": self.freed,
            "kept_referenced": self.referenced,
            "kept_young": self.young,
            "kept_rescued": self.rescued,
            "failed": self.failed,
        }


def gc(ws: Workspace, name: str, *, remotes: list[str], grace: float, apply: bool) -> GcResult:
    try:
        return _gc(ws, name, remotes=remotes, grace=grace, apply=apply)
    finally:
        _drop_gc_refs(ws)


def _gc(ws: Workspace, name: str, *, remotes: list[str], grace: float, apply: bool) -> GcResult:
    if name not in ws.settings.archives:
        raise UsageError(f"no archive named {name!r}", hint=f"configured: {', '.join(ws.archive_names)}")
    ws.require_trusted([name])
    require_whole_history(ws.repo, "gc", "they may need archived objects")
    configured = split_z(ws.repo.git("remote").replace(b"\n", b"\0"))
    remotes = remotes or configured
    if not remotes:
        raise UsageError(
            "this repository has no git remote to check against",
            hint="gc deletes only what no ref of the shared repository needs: add it (git remote add origin URL)",
        )
    for remote in remotes:
        if remote not in configured:
            raise UsageError(f"no git remote named {remote!r}", hint=f"configured: {', '.join(configured) or 'none'}")
    result = GcResult(name, not apply, remotes, grace)
    archive = ws.archive(name)
    needed = _needed(ws, remotes)
    urls = set(remote_urls(ws.repo).values())
    refuse_if_shared(archive, name, roots(ws.repo, ["--all", "--reflog"]), urls)
    now = time.time()
    if apply:
        claim(ws, name, archive)  # this repository's own record, for gc run from any other
        now = min(now, _new_epoch(archive))
    candidates = []
    for info in archive.list("objects/"):
        hex_digest = hex_of_key(info.key)
        if hex_digest is None:
            continue  # not an object gc knows (doctor's test object, a stray file): left alone
        if hex_digest in needed:
            result.referenced += 1
        elif info.modified is None or now - info.modified < grace:
            result.young += 1
        else:
            candidates.append(info)
    if not apply or not candidates:
        result.deleted = candidates
        return result
    needed = _needed(ws, remotes)  # the refs as they are now, after the marker
    for info in candidates:
        if hex_of_key(info.key) in needed:
            result.rescued += 1
            continue
        try:
            archive.delete(info.key)
        except CvfsError as exc:
            result.failed[info.key] = exc.message
            continue
        result.deleted.append(info)
    ArchivedLog(ws.repo.cvfs_dir, ws.settings.archives[name]).forget_all()
    return result


def _drop_gc_refs(ws: Workspace) -> None:
    """The remotes' refs gc fetched under GC_REFS: not the user's, and not kept."""
    out = ws.repo.git("for-each-ref", "--format=delete %(refname)", GC_REFS)
    if out.strip():
        ws.repo.git("update-ref", "--stdin", input=out)


def _needed(ws: Workspace, remotes: list[str]) -> set[str]:
    """Every object a commit on any ref (the remotes', fetched now, and this repository's own),
    an index, or an inventory row on those refs or in any of the repository's work trees names."""
    repo = ws.repo
    for remote in remotes:
        # Every ref the remote has, not only branches and tags: a pull request from a fork
        # (refs/pull/*, refs/merge-requests/*) or notes need their objects too.
        spec = f"+refs/*:{GC_REFS}{remote}/*"
        proc = run_git(["fetch", "--quiet", "--prune", "--no-tags", remote, spec], cwd=repo.root, check=False)
        if proc.returncode != 0:
            said = proc.stderr.decode(errors="replace").splitlines()
            first = next((line for line in said if line.startswith(("fatal:", "error:"))), said[0] if said else "")
            raise CvfsError(
                f"cannot fetch the git remote {remote!r}, so gc cannot see what its refs need: {first}",
                hint="gc deletes nothing it cannot check; fix the remote, or name the ones to use with --remote",
            )
    needed = {ref.hex for _, ref in refs_in_history(repo, ["--all", "--reflog", "--indexed-objects"])}
    tips = set(repo.git("for-each-ref", "--format=%(objectname)").decode().split())
    shards: set[str] = set()
    for tip in tips:
        proc = run_git(["ls-tree", "-r", "-z", tip, "--", SHARD_DIR], cwd=repo.root, check=False)
        for record in split_z(proc.stdout):
            meta, _, _ = record.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                shards.add(parts[2])
    for blob, data in read_blobs(repo, sorted(shards)).items():
        needed.update(row.hex for row in parse_shard(data, where=f"shard {blob}").values())
    needed.update(hexes_in_every_worktree(repo, "gc"))
    return needed


def _new_epoch(archive: Archive) -> float:
    """A new GC_EPOCH_KEY object: its etag changes, and pre-push hooks everywhere then ask the
    archive again instead of trusting what they recorded before. Returns when the archive says
    it stored it (its own clock; this machine's if it gives no date)."""
    with tempfile.NamedTemporaryFile("wb", delete=False) as f:
        f.write(f"{time.time():.3f} {uuid.uuid4()}\n".encode())
        path = Path(f.name)
    try:
        archive.put_file(GC_EPOCH_KEY, path, path.stat().st_size, archive.head(GC_EPOCH_KEY))
    finally:
        os.unlink(path)
    dates = [info.modified for info in archive.list("gc/") if info.key == GC_EPOCH_KEY]
    return dates[0] if dates and dates[0] is not None else time.time()
