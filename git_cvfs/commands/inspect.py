"""resolve, guard, fsck, prune: small commands that look before anything is deleted."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.workspace import Workspace
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "resolve":
        parser.add_argument("path", help="a managed path")
    elif name == "guard":
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories you intend to delete")
        parser.add_argument(
            "--offline", action="store_true", help="trust this machine's records instead of verifying archived copies"
        )
    elif name == "fsck":
        parser.add_argument("--repair", action="store_true", help="remove corrupt cache objects (the archive has them)")
    elif name == "prune":
        parser.add_argument("--dry-run", action="store_true", help="list what would be dropped")
    # resolve answers in JSON always; --json is accepted so that every read command takes it.
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    from git_cvfs.local.git import Repo

    ws = Workspace(Repo.discover_bare() if name == "fsck" else Repo.discover())
    if name == "resolve":
        from git_cvfs.core.resolve import resolve

        output.emit_json(resolve(ws, args.path))
        return 0
    if name == "guard":
        from git_cvfs.core.guard import guard

        g = guard(ws, args.paths, offline=args.offline)
        if args.json:
            output.emit_json(g.to_json())
        else:
            for path, why in sorted(g.at_risk.items()):
                output.data(f"at risk  {path}: {why}")
            how = "from records, archives not asked" if g.checked == "records" else "archived copies verified now"
            output.data(f"{len(g.safe)} safe to delete, {len(g.at_risk)} at risk ({how})")
        return 1 if g.at_risk else 0
    if name == "fsck":
        from git_cvfs.core.fsck import fsck

        f = fsck(ws, repair=args.repair)
        if args.json:
            output.emit_json(f.to_json())
        else:
            for h in f.corrupt_objects:
                output.data(f"corrupt cache object sha256:{h}" + (" (removed)" if args.repair else ""))
            for path, why in sorted(f.bad_refs.items()):
                output.data(f"bad ref {path}: {why}")
            if f.inventory_error:
                output.data(f"inventory: {f.inventory_error}")
            output.data(f"checked {f.objects_checked} cache object(s): " + ("ok" if f.ok else "problems found"))
        return 0 if f.ok else 1
    from git_cvfs.core.prune import prune

    p = prune(ws, dry_run=args.dry_run)
    if args.json:
        output.emit_json(p.to_json())
    else:
        verb = "would drop" if args.dry_run else "dropped"
        output.data(f"{verb} {len(p.dropped)} cache object(s), {format_size(p.freed)}; kept {len(p.kept)}")
        if p.rows_dropped:
            output.data(
                f"{verb} {p.rows_dropped_count} inventory row(s) below minSize: {', '.join(p.rows_dropped[:5])}"
            )
    return 0
