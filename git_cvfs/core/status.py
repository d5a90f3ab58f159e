"""status and ls-files: managed files by state, computed from disk, never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from git_cvfs.core.managed import ManagedFile, State, list_managed
from git_cvfs.core.records import recorded_in_primary
from git_cvfs.core.workspace import Workspace


@dataclass
class StatusReport:
    files: list[ManagedFile]
    pending_upload: list[str]
    cached: set[str]

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
        }


def status(ws: Workspace, pathspecs: Sequence[str] = ()) -> StatusReport:
    files = list_managed(ws, pathspecs)
    cached = {f.target.hex for f in files if f.target and ws.cache.has(f.target.hex)}
    recorded = recorded_in_primary(ws, cached)

    # Pending: bytes only this machine holds, not yet seen in the primary archive.
    pending = [
        f.path
        for f in files
        if f.target and f.state is not State.PLAIN and f.target.hex in cached and f.target.hex not in recorded
    ]
    return StatusReport(files, pending, cached)
