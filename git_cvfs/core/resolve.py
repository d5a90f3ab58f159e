"""resolve: everything an agent needs to know about one managed path, as JSON."""

from __future__ import annotations

from git_cvfs.core.model.managed import list_managed
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.local.index_store import read_worktree_inventory
from git_cvfs.remote.archive import object_key


def resolve(ws: Workspace, path: str) -> dict[str, object]:
    files = list_managed(ws, [f":(literal){path}"])
    row = read_worktree_inventory(ws.repo, keep=lambda r: r.path == path).get(path)
    if not files and row is None:
        raise CvfsError(f"{path} is not a managed file", hint="`git cvfs ls-files` lists the managed files")
    f = files[0] if files else None
    ref = f.target if f else None
    hex_digest = ref.hex if ref else (row.hex if row else None)
    size = f.size if f else (row.size if row else None)
    archives: dict[str, dict[str, object]] = {}
    if hex_digest:
        for name in ws.archive_names:
            facts = row.archives.get(name, {}) if row is not None and row.hex == hex_digest else {}
            archives[name] = {
                "url": f"{ws.settings.archives[name].url.rstrip('/')}/{object_key(hex_digest)}",
                "etag": facts.get("etag"),
                "recorded": bool(facts),
            }
    cache = ws.cache.object_path(hex_digest) if hex_digest else None
    state = f.state.value if f else ("offloaded" if row is not None and not row.git else "untracked")
    return {
        "path": path,
        "oid": f"sha256:{hex_digest}" if hex_digest else None,
        "size": size,
        "state": state,
        "git": row.git if row is not None else True,
        "archives": archives,
        "cache_path": str(cache) if cache is not None and cache.exists() else None,
        **({"problem": f.problem} if f and f.problem else {}),
    }
