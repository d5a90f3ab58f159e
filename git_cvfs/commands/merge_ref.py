"""`git cvfs merge-ref` (merge=cvfs, written by older versions of `track`; run by git): both sides
changed a managed file, a real conflict: ours stays in place and the fix is said."""

from __future__ import annotations

import argparse

from git_cvfs import output


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    for arg in ("base", "ours", "theirs", "path"):
        parser.add_argument(arg)


def run(name: str, args: argparse.Namespace) -> int:
    output.error(
        f"{args.path}: changed on both sides; kept our version",
        hint=f"pick one: `git checkout --theirs -- {args.path}` or `--ours`, then `git add {args.path}`",
    )
    return 1
