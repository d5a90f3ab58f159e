from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.setup import track, untrack
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="gitattributes pattern, e.g. 'data/**'")


def _from_here(repo: Repo, pattern: str) -> str:
    """A pattern as typed in a subdirectory, written for the top-level .gitattributes. One with
    a slash inside is anchored to the directory of the file it is in, so it gets the
    subdirectory in front (`git cvfs track sub/*.bin` in data/ means data/sub/*.bin, as `git
    add sub/x.bin` there means data/sub/x.bin), as does one that starts with ./ (`./*.csv` at
    the top is /*.csv); one without matches at any depth, and one with a leading slash is
    anchored at the top on purpose: those stay as typed."""
    anchored = pattern.startswith("./")  # as a shell user names what is here: this directory only
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if pattern.startswith("/") or ("/" not in pattern.rstrip("/") and not anchored):
        return pattern
    try:
        here = Path.cwd().resolve().relative_to(repo.root.resolve()).as_posix()
    except ValueError:  # not under the work tree (GIT_WORK_TREE set elsewhere)
        return pattern
    if here == ".":
        return f"/{pattern}" if anchored and "/" not in pattern.rstrip("/") else pattern
    return f"{here}/{pattern}"


def run(name: str, args: argparse.Namespace) -> int:
    repo = Repo.discover()
    patterns = [_from_here(repo, pattern) for pattern in args.patterns]
    if name == "track":
        for pattern, changed in track(repo, patterns):
            shown = shlex.quote(pattern)  # as a user would type it again: the shell must not expand it
            output.info(f"Tracking {shown}" if changed else f"{shown} is already tracked")
        output.info("hint: `git add` matching files now; files already committed need `git add --renormalize .`")
    else:
        for pattern in untrack(repo, patterns):
            output.info(f"Untracking {shlex.quote(pattern)}")
        output.info(
            "hint: what is committed stays refs (the archive keeps the bytes); "
            "`git cvfs migrate export` turns history back into plain blobs"
        )
    return 0
