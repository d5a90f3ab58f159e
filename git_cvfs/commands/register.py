"""`git cvfs register PATH...`: hash files (typically gitignored) and record them in the inventory."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.register import register
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (typically gitignored)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    rows = register(ws, work_from_top(ws, args.paths))
    if args.json:
        output.emit_json([{"path": r.path, "oid": r.oid, "size": r.size} for r in rows])
        return 0
    for r in rows:
        output.data(f"registered {r.path}  {format_size(r.size)}  {r.oid}")
    output.info("hint: `git cvfs push` archives them; commit .cvfs/index to share the record")
    return 0
