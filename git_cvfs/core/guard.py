"""guard: would deleting these paths lose bytes that are in no archive and not in git?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from git_cvfs.core.managed import State, holding_committed_bytes, list_managed
from git_cvfs.core.records import recorded_in_primary
from git_cvfs.core.workspace import Workspace
from git_cvfs.errors import UsageError
from git_cvfs.local.git import split_z
from git_cvfs.local.worktree import files_under


@dataclass
class GuardResult:
    safe: list[str] = field(default_factory=list)
    at_risk: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"ok": not self.at_risk, "safe": self.safe, "at_risk": self.at_risk}


def guard(ws: Workspace, pathspecs: Sequence[str]) -> GuardResult:
    result = GuardResult()
    root = ws.repo.root
    if not pathspecs:
        raise UsageError("name the paths you want to delete", hint="git cvfs guard data/run-17/")
    on_disk = files_under(root, pathspecs)
    managed = {f.path: f for f in list_managed(ws, pathspecs)}
    materialized = [(f.path, f.ref) for f in managed.values() if f.state is State.MATERIALIZED and f.ref is not None]
    archived = recorded_in_primary(ws, (ref.hex for _, ref in materialized))
    vouched, verified = holding_committed_bytes(ws, materialized)
    tracked = set(split_z(ws.repo.git("ls-files", "-z", "--", *pathspecs)))
    changed = (
        set(split_z(ws.repo.git("diff", "--name-only", "-z", "HEAD", "--", *pathspecs)))
        if ws.repo.has_head()
        else tracked
    )
    tracked_clean = tracked - changed
    for path in sorted(on_disk):
        f = managed.get(path)
        if f is not None and f.state is State.REF:
            result.safe.append(path)
        elif f is not None and f.state is State.MATERIALIZED and f.ref is not None:
            if f.ref.hex not in archived:
                result.at_risk[path] = "its object is not in the primary archive yet (run `git cvfs push`)"
            elif path not in vouched and path not in verified:
                result.at_risk[path] = "changed since it was committed"
            else:
                result.safe.append(path)
        elif f is not None:
            result.at_risk[path] = f.problem or f"{f.state.value}: bytes not in any archive"
        elif path in tracked_clean:
            result.safe.append(path)  # committed in git
        else:
            result.at_risk[path] = "not committed to git and not in any archive"
    return result
