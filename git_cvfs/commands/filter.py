from __future__ import annotations

import argparse
import sys

from git_cvfs.core.workspace import Workspace


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name != "filter-process":
        parser.add_argument("rest", nargs="*", help="-- %%f: the path git is filtering")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    if name == "filter-process":
        from git_cvfs.core.filter_process import run_filter_process

        return run_filter_process(ws)
    from git_cvfs.core.single_filter import clean_file, smudge_file

    path = args.rest[-1] if args.rest else ""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    (clean_file if name == "clean" else smudge_file)(ws, path, stdin, stdout)
    stdout.flush()
    return 0
