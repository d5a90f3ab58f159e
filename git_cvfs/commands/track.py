from __future__ import annotations

import argparse
import shlex

from git_cvfs import output
from git_cvfs.core.setup import track, untrack
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="gitattributes pattern, e.g. 'data/**'")


def run(name: str, args: argparse.Namespace) -> int:
    repo = Repo.discover()
    if name == "track":
        for pattern, changed in track(repo, args.patterns):
            shown = shlex.quote(pattern)  # as a user would type it again: the shell must not expand it
            output.info(f"Tracking {shown}" if changed else f"{shown} is already tracked")
        output.info("hint: `git add` matching files now; files already committed need `git add --renormalize .`")
    else:
        for pattern in untrack(repo, args.patterns):
            output.info(f"Untracking {shlex.quote(pattern)}")
        output.info(
            "hint: what is committed stays refs (the archive keeps the bytes); "
            "`git cvfs migrate export` turns history back into plain blobs"
        )
    return 0
