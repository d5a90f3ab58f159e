"""ingest: archive a file that lives outside the work tree and place its ref at a managed path."""

from __future__ import annotations

from pathlib import Path

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.push import archive_refs
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.paths import validate_repo_path
from git_cvfs.format.ref import Ref, parse_ref
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.worktree import read_head, write_bytes


def ingest(ws: Workspace, source: Path, target: str) -> Ref:
    target = validate_repo_path(target)
    if not source.is_file():
        raise UsageError(f"{source} is not a file", hint="--source names the file to archive")
    if ws.repo.attr_values("filter", [target]).get(target) != "cvfs":
        raise UsageError(f"{target} is not a managed path", hint=f"git cvfs track '{Path(target).parent}/**' first")
    existing = read_head(ws.repo.root, target)
    if existing is not None:
        try:
            is_ref = parse_ref(existing[1]) is not None
        except CvfsError:
            is_ref = False
        if not is_ref:
            raise CvfsError(
                f"{target} already holds data; not replacing it", hint="choose another --target, or move it"
            )
    with open(source, "rb") as f:
        hex_digest, size = ws.cache.put_stream(iter(lambda: f.read(CHUNK), b""))
    ref = Ref(hex_digest, size)
    outcome = archive_refs(ws, [(target, ref)])
    if not outcome.ok:
        why = next(iter({**outcome.missing, **outcome.unreachable}.values()))
        raise CvfsError(
            f"could not archive {source}: {why}",
            hint="nothing was written at the target; retry when the archive is reachable",
        )
    write_bytes(ws.repo.root, target, ref.encode(), create_dirs=True)
    ws.repo.git("add", "--", target)
    if not ws.settings.cache_keep:
        ws.cache.remove(hex_digest)  # archived (confirmed above); the source file is still where it was
    return ref
