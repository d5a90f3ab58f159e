"""scan: large files in scope that git-cvfs does not manage yet."""

from __future__ import annotations

import os
from dataclasses import dataclass

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.setup import track
from git_cvfs.local.git import split_z


@dataclass(frozen=True)
class Unmanaged:
    path: str
    size: int
    tracked_by_git: bool


def scan(ws: Workspace, *, prefix: str | None, add: bool) -> list[Unmanaged]:
    repo = ws.repo
    settings = ws.settings
    tracked = set(split_z(repo.git("ls-files", "-z")))
    candidates = split_z(repo.git("ls-files", "-z", "-co", "--exclude-standard"))
    if prefix:
        candidates = [p for p in candidates if p.startswith(prefix)]
    elif settings.scope_prefixes:
        candidates = [p for p in candidates if settings.in_scope(p)]
    sized = []
    for path in dict.fromkeys(candidates):
        try:
            st = os.lstat(repo.root / path)
        except FileNotFoundError:
            continue
        if st.st_size >= settings.min_size_for(path) and not os.path.islink(repo.root / path):
            sized.append((path, st.st_size))
    attrs = repo.attr_values("filter", [p for p, _ in sized])
    found = [Unmanaged(p, s, p in tracked) for p, s in sized if attrs.get(p) != "cvfs"]
    if add and found:
        track(repo, [_literal(f.path) for f in found])
    return found


def _literal(path: str) -> str:
    """A .gitattributes pattern matching exactly this path."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\!#" else c for c in path)
    return "/" + escaped
