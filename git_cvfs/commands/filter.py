from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

from git_cvfs.core.model.workspace import Workspace

if TYPE_CHECKING:
    import argparse


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name != "filter-process":
        parser.add_argument("rest", nargs="*", help="-- %%f: the path git is filtering")


def filter_process() -> NoReturn:
    """`git cvfs filter-process`, which git starts in every checkout and clone. It takes no
    options, so cli.py calls this without argparse (12 ms of the start-up git waits for).

    git also waits for it to exit. When it has answered, settled the index, and closed its
    pools, nothing is left to do but Python's own finalization (module teardown, a last
    garbage collection), which took 20 ms after a 2,000-file clone: the process ends at once.
    No finalizer runs: whatever the filter writes must be on disk, or flushed, by the time
    run_filter_process returns (the journals write unbuffered; spills are closed per request).
    Errors raise before this point and take cli.main's usual way out.
    """
    from git_cvfs.core.plumbing.filter_process import run_filter_process

    code = run_filter_process(Workspace.discover())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(name: str, args: argparse.Namespace) -> int:
    if name == "filter-process":
        filter_process()
    ws = Workspace.discover()
    from git_cvfs.core.plumbing.single_filter import clean_file, smudge_file

    path = args.rest[-1] if args.rest else ""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    (clean_file if name == "clean" else smudge_file)(ws, path, stdin, stdout)
    stdout.flush()
    return 0
