from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.push import push, raise_for_missing
from git_cvfs.errors import CvfsError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="every object referenced anywhere in history")
    parser.add_argument("--archive", metavar="NAME", help="only this archive (primary or secondary)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    result = push(ws, all_history=args.all, archive=args.archive)
    if args.json:
        output.emit_json(result.to_json())
        return 0 if result.outcome.ok else 1
    raise_for_missing(result, "push incomplete")
    if result.outcome.unreachable:
        first = next(iter(result.outcome.unreachable.values()))
        raise CvfsError(
            f"{len(result.outcome.unreachable)} object(s) not uploaded: {first}",
            hint="check that the archive is reachable, then run `git cvfs push` again",
        )
    output.info(f"git-cvfs: uploaded {result.outcome.uploaded} object(s); {result.outcome.skipped} already archived")
    return 0
