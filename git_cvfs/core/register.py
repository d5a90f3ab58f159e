"""register: hash files and record them in the inventory without uploading.

For data that must stay out of git (gitignored): its `git: false` row is its only
record; `git cvfs push` archives it, `offload` frees it, `ensure` brings it back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from git_cvfs.core.workspace import Workspace
from git_cvfs.errors import UsageError
from git_cvfs.format.inventory import Row, validate_repo_path
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.git import split_z
from git_cvfs.local.index_store import read_worktree_inventory, update_inventory


def register(ws: Workspace, pathspecs: Sequence[str]) -> list[Row]:
    if not pathspecs:
        raise UsageError("name the files or directories to register", hint="git cvfs register data/raw/")
    root = ws.repo.root
    tracked = set(split_z(ws.repo.git("ls-files", "-z", "--", *pathspecs)))
    existing = read_worktree_inventory(ws.repo)
    rows: dict[str, Row | None] = {}
    for path in _files(root, pathspecs):
        if path in tracked:
            continue  # git holds it: the filter and hooks manage it
        with open(root / path, "rb") as f:
            hex_digest, size = ws.cache.put_stream(iter(lambda: f.read(CHUNK), b""))
        old = existing.get(path)
        facts = old.archives if old is not None and old.hex == hex_digest else {}
        rows[path] = Row(path, hex_digest, size, False, facts)
    update_inventory(ws.repo, rows, from_index=False)
    return [r for r in rows.values() if r is not None]


def _files(root: os.PathLike[str], pathspecs: Sequence[str]) -> list[str]:
    out = []
    for spec in pathspecs:
        rel = os.path.relpath(os.path.join(os.getcwd(), spec), root)
        validate_repo_path(rel)
        full = os.path.join(root, rel)
        if os.path.islink(full):
            continue
        if os.path.isfile(full):
            out.append(rel)
            continue
        if not os.path.isdir(full):
            raise UsageError(f"{spec} does not exist", hint="name files or directories in the work tree")
        for dirpath, dirs, names in os.walk(full):
            dirs[:] = [d for d in dirs if d != ".git"]
            out += [
                os.path.relpath(os.path.join(dirpath, n), root)
                for n in names
                if not os.path.islink(os.path.join(dirpath, n))
            ]
    return sorted(set(out))
