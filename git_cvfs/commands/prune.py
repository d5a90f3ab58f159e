"""`git cvfs prune`: drop cache objects the archives are shown, now, to hold."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.prune import prune
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be dropped")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    p = prune(Workspace.discover(), dry_run=args.dry_run)
    if args.json:
        output.emit_json(p.to_json())
    else:
        verb = "would drop" if args.dry_run else "dropped"
        output.data(f"{verb} {len(p.dropped)} cache object(s), {format_size(p.freed)}; kept {len(p.kept)}")
        if p.rows_dropped:
            shown = ", ".join(p.rows_dropped[:5])
            output.data(f"{verb} {p.rows_dropped_count} inventory row(s) below minSize: {shown}")
    if p.unasked:
        output.error(
            f"{len(p.unasked)} cache object(s) kept unchecked: {next(iter(p.unasked.values()))}",
            hint="check that the archive is reachable (`git cvfs doctor --probe`), then run `git cvfs prune` again",
        )
        return 1
    return 0
