"""migrate: bring history into git-cvfs. `migrate info` (this module so far): what across
history would become refs, by pattern and size, as Git LFS's `migrate info` reports it."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from git_cvfs.core.model.refscan import blob_sizes
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import UsageError
from git_cvfs.format.glob import match_any
from git_cvfs.local.git import run_git


@dataclass
class PatternStats:
    pattern: str
    blobs: int = 0
    bytes: int = 0
    largest: int = 0
    paths: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, object]:
        return {
            "pattern": self.pattern,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "largest": self.largest,
            "paths": len(self.paths),
        }


@dataclass
class MigrateInfo:
    revs: list[str]
    above: int
    patterns: list[PatternStats]
    below: int = 0  # blobs under the threshold (stay in git)
    below_bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "revs": self.revs,
            "above": self.above,
            "patterns": [p.to_json() for p in self.patterns],
            "total_blobs": sum(p.blobs for p in self.patterns),
            "total_bytes": sum(p.bytes for p in self.patterns),
            "staying_in_git": {"blobs": self.below, "bytes": self.below_bytes},
        }


def pattern_of(path: str) -> str:
    """How `migrate info` groups a path: `*.ext` when it has an extension, else its name."""
    name = posixpath.basename(path)
    stem, ext = posixpath.splitext(name)
    return f"*{ext}" if ext and stem else name


def migrate_info(ws: Workspace, revs: list[str], *, above: int, include: list[str]) -> MigrateInfo:
    """Every blob reachable from revs (each counted once, under the first path it is seen at)
    that is `above` bytes or more and matches include (when given), grouped by pattern."""
    for rev in revs:
        if rev.startswith("-") and rev not in ("--all", "--branches", "--tags", "--remotes"):
            raise UsageError(f"unknown option {rev!r}", hint="name revisions, or --everything")
    proc = run_git(["rev-list", "--objects", *revs, "--"], cwd=ws.repo.root, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"cannot list history of {' '.join(revs)}: {detail[0] if detail else 'git rev-list failed'}",
            hint="name branches, tags or commits that exist (`git branch -a`), or --everything",
        )
    first_path: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        sha, _, path = line.partition(" ")
        if path and sha not in first_path:
            first_path[sha] = path
    sizes = blob_sizes(ws.repo, list(first_path))
    stats: dict[str, PatternStats] = {}
    info = MigrateInfo(revs, above, [])
    for sha, size in sizes.items():
        path = first_path[sha]
        if size < above or (include and not match_any(include, path)):
            info.below += 1
            info.below_bytes += size
            continue
        s = stats.setdefault(pattern_of(path), PatternStats(pattern_of(path)))
        s.blobs += 1
        s.bytes += size
        s.largest = max(s.largest, size)
        s.paths.add(path)
    info.patterns = sorted(stats.values(), key=lambda p: (-p.bytes, p.pattern))
    return info
