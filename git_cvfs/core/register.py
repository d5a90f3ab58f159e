"""register: hash files and record them in the inventory without uploading.

For data that must stay out of git (gitignored): its `git: false` row is its only
record; `git cvfs push` archives it, `offload` frees it, `ensure` brings it back.
"""

from __future__ import annotations

from collections.abc import Sequence

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.inventory import Row
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.git import split_z
from git_cvfs.local.index_store import read_worktree_inventory, update_inventory
from git_cvfs.local.worktree import files_under


def register(ws: Workspace, pathspecs: Sequence[str]) -> list[Row]:
    if not pathspecs:
        raise UsageError("name the files or directories to register", hint="git cvfs register data/raw/")
    root = ws.repo.root
    tracked = set(split_z(ws.repo.git("ls-files", "-z", "--", *pathspecs)))
    # git holds the tracked ones (the filter and hooks manage them); a link is not data.
    found = files_under(root, pathspecs)
    paths = [p for p in found if p not in tracked and not (root / p).is_symlink()]
    if not paths:  # registering nothing is no success: say why
        held = [p for p in found if p in tracked]
        if held:
            more = f" (and {len(held) - 1} more)" if len(held) > 1 else ""
            raise CvfsError(
                f"nothing to register: {held[0]} is tracked by git{more}",
                hint="git add stores tracked files (git-cvfs's filter makes large ones refs); "
                "register is for files git does not hold, such as gitignored outputs",
            )
        raise CvfsError(
            f"nothing to register: no file under {', '.join(pathspecs)} (symbolic links are not data)",
            hint="name the files or directories to register",
        )
    wanted = set(paths)
    existing = read_worktree_inventory(ws.repo, keep=lambda r: r.path in wanted)
    rows: dict[str, Row | None] = {}
    for path in paths:
        with open(root / path, "rb") as f:
            hex_digest, size = ws.cache.put_stream(iter(lambda: f.read(CHUNK), b""))
        old = existing.get(path)
        facts = old.archives if old is not None and old.hex == hex_digest else {}
        rows[path] = Row(path, hex_digest, size, False, facts)
    update_inventory(ws.repo, rows, from_index=False)
    return [r for r in rows.values() if r is not None]
