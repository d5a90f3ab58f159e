"""`git cvfs scan [--add]`: large files in scope that git-cvfs does not manage yet."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.scan import scan
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--add", action="store_true", help="track every file found (.gitattributes)")
    parser.add_argument("--prefix", metavar="P", help="only under this path prefix (default: scope.prefix)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    found = scan(Workspace.discover(), prefix=args.prefix, add=args.add)
    if args.json:
        output.emit_json([{"path": f.path, "size": f.size, "tracked_by_git": f.tracked_by_git} for f in found])
        return 0
    for f in found:
        output.data(f"{format_size(f.size):>10}  {f.path}" + ("  (plain git blob)" if f.tracked_by_git else ""))
    if found and args.add:
        output.info(f"git-cvfs: now tracking {len(found)} file(s); `git add --renormalize .` and commit to manage them")
    elif found:
        output.info("hint: `git cvfs scan --add` tracks them, or `git cvfs track PATTERN`")
    return 0
