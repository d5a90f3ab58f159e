"""`git cvfs migrate info [--above SIZE] [--include PATTERN]... [--everything | REV...]`."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.migrate import migrate_info
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.size import format_size, parse_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["info"], help="info: what across history would become refs")
    parser.add_argument("revs", nargs="*", metavar="REV", help="revisions whose history to look at (default: HEAD)")
    parser.add_argument("--everything", action="store_true", help="every ref: branches, tags, remote-tracking")
    parser.add_argument("--above", metavar="SIZE", help="blobs at or above SIZE (default: scope.minSize)")
    parser.add_argument(
        "--include", action="append", default=[], metavar="PATTERN", help="only paths matching (gitignore-style)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    above = parse_size(args.above, what="--above") if args.above else ws.settings.min_size
    revs = ["--all"] if args.everything else (args.revs or ["HEAD"])
    info = migrate_info(ws, revs, above=above, include=args.include)
    if args.json:
        output.emit_json(info.to_json())
        return 0
    if info.patterns:
        width = max(len("pattern"), *(len(p.pattern) for p in info.patterns))
        output.data(f"{'pattern':<{width}}  {'blobs':>6}  {'total':>10}  {'largest':>10}  paths")
        for p in info.patterns:
            output.data(
                f"{p.pattern:<{width}}  {p.blobs:>6}  {format_size(p.bytes):>10}  {format_size(p.largest):>10}  {len(p.paths)}"
            )
    total = sum(p.bytes for p in info.patterns)
    output.data(
        f"{sum(p.blobs for p in info.patterns)} blob(s), {format_size(total)}, at or above {format_size(above)} "
        f"in the history of {'every ref' if args.everything else ' '.join(revs)}; "
        f"{info.below} blob(s), {format_size(info.below_bytes)}, below it"
    )
    return 0
