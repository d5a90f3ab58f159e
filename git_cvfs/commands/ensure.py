from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.ensure import ensure
from git_cvfs.core.model.workspace import Workspace


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: everything)")
    if name == "ensure":
        parser.add_argument("--check-only", action="store_true", help="report refs, change nothing; exit 1 if any")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    check_only = name == "preflight" or args.check_only
    result = ensure(ws, args.paths, check_only=check_only)
    if args.json:
        output.emit_json(result.to_json())
        return 0 if result.ok else 1
    for path, why in sorted(result.failed.items()):
        output.error(f"{path}: {why}")
    if check_only:
        for path in result.still_refs:
            output.data(path)
        if result.still_refs:
            output.info(f"git-cvfs: {len(result.still_refs)} file(s) are refs, not data")
            output.info(f"hint: git cvfs ensure {' '.join(args.paths) or '.'}")
        return 0 if result.ok else 1
    output.info(
        f"git-cvfs: materialized {len(result.materialized)} file(s); "
        f"{len(result.already)} already present; {len(result.failed)} failed"
    )
    if result.budget is not None:
        from git_cvfs.core.budget import report

        report(result.budget)
    if result.failed and len(result.changed_underfoot) == len(result.failed):
        output.info("hint: files changed while ensure ran (a checkout or an edit); run `git cvfs ensure` again")
    elif result.failed:
        output.info("hint: run `git cvfs ensure` again once the archive is reachable; nothing was changed for those")
    return 0 if result.ok else 1
