"""status and ls-files: managed files by state, computed from disk, never stored."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from git_cvfs.core.model.holdings import archives_holding
from git_cvfs.core.model.managed import ManagedFile, State, hashed_against, list_managed, list_unversioned
from git_cvfs.core.model.pathspecs import require_matches
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.local.git import split_z
from git_cvfs.local.index_stat import record_hashed
from git_cvfs.local.index_store import check_inventory


class StatusReport:
    def __init__(self, files: list[ManagedFile], pending_upload: list[str], cached: set[str], checked: str) -> None:
        self.files = files
        self.pending_upload = pending_upload
        self.cached = cached
        # what pending_upload was asked of: "archives", or "records" (--offline, or the primary could not be asked)
        self.checked = checked
        self.outside_scope: list[str] = []  # refs at paths git-cvfs does not manage
        self.archive_errors: dict[str, str] = {}
        self.budget: int | None = None  # worktree.budget, when set: bytes materialized files may use

    def entry(self, f: ManagedFile) -> dict[str, object]:
        ref = f.target
        return {
            "path": f.path,
            "state": f.state.value,
            "oid": ref.oid if ref else None,
            "size": f.size,
            "cached": bool(ref and ref.hex in self.cached),
            "pending_upload": f.path in self.pending_upload,
            **({"problem": f.problem} if f.problem else {}),
        }

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            t = out.setdefault(f.state.value, {"files": 0, "bytes": 0})
            t["files"] += 1
            t["bytes"] += f.size
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "files": [self.entry(f) for f in self.files],
            "totals": self.totals(),
            "pending_upload": self.pending_upload,
            "checked": self.checked,
            "archive_errors": self.archive_errors,
            "refs_outside_scope": self.outside_scope,
            **({"worktree_budget": {"budget": self.budget, "used": self.used}} if self.budget is not None else {}),
        }

    @property
    def used(self) -> int:
        """Bytes the materialized files take (what worktree.budget counts)."""
        return sum(f.size for f in self.files if f.state is State.MATERIALIZED)


def _same_size_changes(ws: Workspace, files: Sequence[ManagedFile]) -> None:
    """Mark as modified the files that hold other bytes of their object's size (a model's next
    checkpoint): the size alone said "materialized". git's stat data vouches for the others
    (`git diff-files` lists the entries whose file it cannot vouch for, in any index format);
    those it lists are hashed, as `git status` would clean them. A touched file that still
    holds its object stays materialized, and its new stat data goes into git's index, as `git
    status` records it: the next status does not hash it again."""
    candidates = {f.path: f for f in files if f.state is State.MATERIALIZED and f.ref is not None}
    if not candidates:
        return
    root = ws.repo.root
    started = time.time_ns()
    hashed: dict[str, tuple[str, os.stat_result]] = {}
    for path in sorted(set(split_z(ws.repo.git("diff-files", "--name-only", "-z"))) & candidates.keys()):
        f = candidates[path]
        assert f.ref is not None
        try:
            holds, st = hashed_against(root, path, f.ref)
        except OSError:  # gone meanwhile: left as it was found
            continue
        if not holds:
            f.state = State.MODIFIED
        elif st is not None:
            hashed[path] = (f.blob, st)
    record_hashed(ws.repo.index_file, root, hashed, written_before=started - 1_000_000_000)


def status(ws: Workspace, pathspecs: Sequence[str] = (), *, offline: bool = False) -> StatusReport:
    """Managed files by state; pending uploads are objects this machine's cache holds that the
    primary archive does not, as the archive answers (one listing or a HEAD each), or offline,
    as the records say."""
    outside: list[str] = []
    files = list_managed(ws, pathspecs, outside_scope=outside)
    _same_size_changes(ws, files)
    if pathspecs:  # a typo is not "0 files"; a registered (gitignored) file is not a typo either
        known = [f.path for f in files] + outside + [f.path for f in list_unversioned(ws, pathspecs)]
        require_matches(ws, pathspecs, known, "status")
    sizes = {f.target.hex: f.target.size for f in files if f.target and ws.cache.has(f.target.hex)}
    check_inventory(ws.repo, remember=True)  # every row checked (or unchanged since): a damaged one is named
    report = StatusReport(files, [], set(sizes), checked="records" if offline else "archives")
    report.outside_scope = outside
    report.budget = ws.settings.worktree_budget
    problem = ws.trust_problem("primary")
    if problem is not None and not offline:
        report.archive_errors["primary"] = problem.message
    if not sizes:
        return report
    holdings = archives_holding(ws, sizes, offline=offline) if problem is None or offline else None
    if holdings is not None:
        report.archive_errors = holdings.errors
    if holdings is None or "primary" in holdings.errors:
        # The primary could not be asked: pending uploads as this machine's records say (an
        # empty list would read as "all archived"), and the report says so.
        holdings = archives_holding(ws, sizes, offline=True)
        report.checked = "records"
    report.pending_upload = [
        f.path
        for f in files
        if f.target
        and f.state is not State.PLAIN
        and f.target.hex in sizes
        and "primary" not in holdings.holders.get(f.target.hex, set())
    ]
    return report
