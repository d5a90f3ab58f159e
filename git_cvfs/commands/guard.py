"""`git cvfs guard PATH...`: exit 1 if deleting the paths would lose bytes that are nowhere else."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.guard import guard
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories you intend to delete")
    parser.add_argument(
        "--offline", action="store_true", help="trust this machine's records instead of verifying archived copies"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    g = guard(ws, work_from_top(ws, args.paths), offline=args.offline)
    if args.json:
        output.emit_json(g.to_json())
    else:
        for path, why in sorted(g.at_risk.items()):
            output.data(f"at risk  {path}: {why}")
        how = "from records, archives not asked" if g.checked == "records" else "archived copies verified now"
        output.data(f"{len(g.safe)} safe to delete, {len(g.at_risk)} at risk ({how})")
    return 1 if g.at_risk else 0
