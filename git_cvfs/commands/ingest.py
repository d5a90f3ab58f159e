"""`git cvfs ingest --source FILE --target PATH`: archive a file from outside the work tree and
stage its ref at a managed path."""

from __future__ import annotations

import argparse
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.ingest import ingest
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, type=Path, metavar="FILE", help="the file to archive")
    parser.add_argument("--target", required=True, metavar="PATH", help="managed path for its ref")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ref = ingest(Workspace.discover(), args.source, args.target)
    if args.json:
        output.emit_json({"path": args.target, "oid": ref.oid, "size": ref.size})
    else:
        output.info(f"git-cvfs: archived {args.source} ({format_size(ref.size)}) and staged its ref at {args.target}")
    return 0
