from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.ensure import fetch, recent_revisions
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import UsageError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: everything)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--rev", action="append", default=[], metavar="REV", help="the managed files of this revision (repeatable)"
    )
    which.add_argument(
        "--recent",
        type=int,
        metavar="N",
        help="the managed files at the tips of the N most recently committed branches",
    )
    which.add_argument("--all", action="store_true", help="every managed file in all history (every ref)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    args.paths = work_from_top(ws, args.paths)
    if args.all and args.paths:
        raise UsageError("--all takes no paths", hint="git cvfs fetch --all, or git cvfs fetch --rev REV PATH")
    revs = args.rev
    if args.recent is not None:
        if args.recent < 1:
            raise UsageError(
                f"--recent {args.recent}: give a number of branches, 1 or more", hint="git cvfs fetch --recent 3"
            )
        revs = recent_revisions(ws, args.recent)
        if not revs:
            raise UsageError("--recent: this repository has no branches yet", hint="commit first, or name --rev REV")
    result = fetch(ws, args.paths, revs=revs, history=args.all)
    if args.json:
        output.emit_json({"ok": not result.failed, "fetched": result.materialized, "failed": result.failed})
    else:
        for path, why in sorted(result.failed.items()):
            output.error(f"{path}: {why}")
        output.info(f"git-cvfs: {len(result.materialized)} object(s) in the cache, {len(result.failed)} failed")
    return 1 if result.failed else 0
