from __future__ import annotations

import argparse
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.export import FORMATS, export, format_for
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev", metavar="REV", help="the revision to archive (a commit, branch or tag)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="the file to write")
    parser.add_argument("--format", choices=FORMATS, help="default: from the file name (.zip, .tar.gz), else tar")
    parser.add_argument("--prefix", default="", metavar="DIR/", help="put every path under this directory")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    result = export(ws, args.rev, args.output, fmt=format_for(args.output, args.format), prefix=args.prefix)
    if args.json:
        output.emit_json(
            {
                "output": str(result.path),
                "files": result.files,
                "materialized": result.materialized,
                "bytes": result.bytes,
            }
        )
    else:
        output.info(
            f"git-cvfs: wrote {result.path}: {result.files} file(s), {result.materialized} of them managed data, "
            f"{format_size(result.bytes)}"
        )
    return 0
