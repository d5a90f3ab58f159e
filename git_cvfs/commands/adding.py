"""scan and ingest: getting data under git-cvfs."""

from __future__ import annotations

import argparse
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.workspace import Workspace
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "register":
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (typically gitignored)")
    elif name == "scan":
        parser.add_argument("--add", action="store_true", help="track every file found (.gitattributes)")
        parser.add_argument("--prefix", metavar="P", help="only under this path prefix (default: scope.prefix)")
    else:
        parser.add_argument("--source", required=True, type=Path, metavar="FILE", help="the file to archive")
        parser.add_argument("--target", required=True, metavar="PATH", help="managed path for its ref")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    if name == "register":
        from git_cvfs.core.register import register

        rows = register(ws, args.paths)
        if args.json:
            output.emit_json([{"path": r.path, "oid": r.oid, "size": r.size} for r in rows])
        else:
            for r in rows:
                output.data(f"registered {r.path}  {format_size(r.size)}  {r.oid}")
            output.info("hint: `git cvfs push` archives them; commit .cvfs/index to share the record")
        return 0
    if name == "ingest":
        from git_cvfs.core.ingest import ingest

        ref = ingest(ws, args.source, args.target)
        if args.json:
            output.emit_json({"path": args.target, "oid": ref.oid, "size": ref.size})
        else:
            output.info(
                f"git-cvfs: archived {args.source} ({format_size(ref.size)}) and staged its ref at {args.target}"
            )
        return 0
    from git_cvfs.core.scan import scan

    found = scan(ws, prefix=args.prefix, add=args.add)
    if args.json:
        output.emit_json([{"path": f.path, "size": f.size, "tracked_by_git": f.tracked_by_git} for f in found])
        return 0
    for f in found:
        output.data(f"{format_size(f.size):>10}  {f.path}" + ("  (plain git blob)" if f.tracked_by_git else ""))
    if found and args.add:
        output.info(f"git-cvfs: now tracking {len(found)} file(s); `git add --renormalize .` and commit to manage them")
    elif found:
        output.info("hint: `git cvfs scan --add` tracks them, or `git cvfs track PATTERN`")
    return 0
