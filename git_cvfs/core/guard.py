"""guard: would deleting these paths lose bytes that are in no archive and not in git?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from git_cvfs.core.model.copies import CopyChecker
from git_cvfs.core.model.holdings import archives_holding
from git_cvfs.core.model.managed import State, holding_committed_bytes, list_managed
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import UsageError
from git_cvfs.local.git import split_z
from git_cvfs.local.worktree import files_under


@dataclass
class GuardResult:
    checked: str = "archives"  # what vouched for archived copies: "archives" (verified now), or "records"
    safe: list[str] = field(default_factory=list)
    at_risk: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"ok": not self.at_risk, "checked": self.checked, "safe": self.safe, "at_risk": self.at_risk}


def guard(ws: Workspace, pathspecs: Sequence[str], *, offline: bool = False) -> GuardResult:
    """Would deleting these paths lose bytes? A materialized file is safe only when enough
    archives are shown, now, to hold its object (core/model/copies.py); offline, this machine's
    records of verified uploads and the inventory stand in, and the result says so."""
    result = GuardResult(checked="records" if offline else "archives")
    root = ws.repo.root
    if not pathspecs:
        raise UsageError("name the paths you want to delete", hint="git cvfs guard data/run-17/")
    on_disk = files_under(root, pathspecs)
    managed = {f.path: f for f in list_managed(ws, pathspecs)}
    materialized = [(f.path, f.ref) for f in managed.values() if f.state is State.MATERIALIZED and f.ref is not None]
    vouched, verified = holding_committed_bytes(ws, materialized)
    if offline:
        recorded = archives_holding(ws, {ref.hex: ref.size for _, ref in materialized}, offline=True).holders
    checker = CopyChecker(ws)
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
            if path not in vouched and path not in verified:
                result.at_risk[path] = "changed since it was committed"
            elif offline:
                held = recorded.get(f.ref.hex, set())
                if "primary" in held and len(held) >= ws.settings.min_copies:
                    result.safe.append(path)
                else:
                    result.at_risk[path] = "no record of enough archived copies (run `git cvfs push`)"
            else:
                copies = checker.copies(f.ref, local=root / path)
                if copies.enough:
                    result.safe.append(path)
                else:
                    result.at_risk[path] = copies.why_not()
        elif f is not None and f.state is State.PLAIN and path not in tracked_clean:
            result.at_risk[path] = "changed since it was committed (git holds a plain blob), and not in any archive"
        elif f is not None and f.state is not State.PLAIN:
            result.at_risk[path] = f.problem or f"{f.state.value}: bytes not in any archive"
        elif path in tracked_clean:
            result.safe.append(path)  # committed in git (a plain blob, below minSize, among them)
        else:
            result.at_risk[path] = "not committed to git and not in any archive"
    return result
