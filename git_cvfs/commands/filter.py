from __future__ import annotations

import sys

from git_cvfs.core.workspace import Workspace

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name != "filter-process":
        parser.add_argument("rest", nargs="*", help="-- %%f: the path git is filtering")


def filter_process() -> int:
    """`git cvfs filter-process`, which git starts in every checkout and clone. It takes no
    options, so cli.py calls this without argparse (12 ms of the start-up git waits for)."""
    from git_cvfs.core.filter_process import run_filter_process

    return run_filter_process(Workspace.discover())


def run(name: str, args: argparse.Namespace) -> int:
    if name == "filter-process":
        return filter_process()
    ws = Workspace.discover()
    from git_cvfs.core.single_filter import clean_file, smudge_file

    path = args.rest[-1] if args.rest else ""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    (clean_file if name == "clean" else smudge_file)(ws, path, stdin, stdout)
    stdout.flush()
    return 0
