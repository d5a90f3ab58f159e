"""`git cvfs gc --archive NAME [--remote R]... [--grace 14d] [--apply]`: dry run unless applied."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.gc import gc
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.duration import format_duration, parse_duration
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive", required=True, metavar="NAME", help="the archive to collect (primary, secondary)")
    parser.add_argument(
        "--remote",
        action="append",
        default=[],
        metavar="NAME",
        help="the git remote whose refs decide what is needed (repeatable; default: every remote)",
    )
    parser.add_argument(
        "--grace", default="14d", metavar="AGE", help="keep objects stored more recently than this (default 14d)"
    )
    parser.add_argument("--apply", action="store_true", help="delete (default: show what would be deleted)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    grace = parse_duration(args.grace, what="--grace")
    result = gc(Workspace.discover(), args.archive, remotes=args.remote, grace=grace, apply=args.apply)
    if args.json:
        output.emit_json(result.to_json())
        return 1 if result.failed else 0
    verb = "would delete" if result.dry_run else "deleted"
    for info in result.deleted:
        output.data(f"{verb} {info.key}  {format_size(info.size)}")
    for key, why in sorted(result.failed.items()):
        output.error(f"{key}: not deleted: {why}")
    output.data(
        f"{verb} {len(result.deleted)} object(s), {format_size(result.freed)}; kept {result.referenced} that "
        f"commits or inventory rows need (refs of {', '.join(result.remotes)} and this repository), "
        f"{result.young} stored within {format_duration(result.grace)}"
        + (f", {result.rescued} referenced again by the time gc deleted" if result.rescued else "")
    )
    if result.dry_run and result.deleted:
        output.info(f"hint: run it again with --apply to delete them: git cvfs gc --archive {args.archive} --apply")
    return 1 if result.failed else 0
