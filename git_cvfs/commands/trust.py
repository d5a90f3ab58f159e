from __future__ import annotations

import argparse
import sys

from git_cvfs import output
from git_cvfs.core import trust
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.trust import TrustReport
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "locations",
        nargs="*",
        metavar="LOCATION",
        help="approve this location without a repository, e.g. 's3://bucket endpoint=https://host' (for CI)",
    )
    parser.add_argument("--yes", action="store_true", help="approve what is listed without asking")
    parser.add_argument("--list", action="store_true", help="list every approval in your git config")
    parser.add_argument("--revoke", metavar="LOCATION", help="remove an approval")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    repo = Repo.find()
    if args.list:
        approvals = trust.list_approvals(repo)
        if args.json:
            output.emit_json([{"scope": scope, "location": loc} for scope, loc in approvals])
        else:
            for scope, loc in approvals:
                output.data(f"{scope:<7} {loc}")
        return 0
    if args.revoke:
        from git_cvfs.local.trust import parse_location, revoke

        location = parse_location(args.revoke)
        removed = revoke(location, repo=repo)
        if not removed:
            raise CvfsError(
                f"{location} is not approved in your git config", hint="`git cvfs trust --list` shows what is"
            )
        output.info(f"git-cvfs: no longer approved: {location}")
        return 0
    if args.locations:
        done = trust.approve_locations(args.locations, repo)
        if args.json:
            output.emit_json({"ok": True, "approved_now": done})
        for loc in done:
            output.info(f"git-cvfs: approved {loc} (in ~/.gitconfig)")
        if not done and not args.json:
            output.info("git-cvfs: already approved")
        return 0
    if repo is None:
        raise UsageError(
            "not inside a git work tree, and no location given",
            hint="run it inside the repository, or name the location: git cvfs trust 's3://bucket'",
        )
    ws = Workspace(repo)
    report = trust.trust_report(ws)
    forbidden = [e for e in report.entries if e.forbidden]
    pending = report.pending
    if not args.json:
        _show(report)
    if forbidden:  # a configuration that names such a place is not one to approve any part of
        first = forbidden[0]
        raise CvfsError(
            f'archive "{first.name}" at {first.location} may not be named in .cvfs/config: {first.forbidden}; '
            "nothing approved",
            hint=f"remove archive.{first.name}.url from .cvfs/config",
        )
    if pending and not args.yes and args.json:
        output.emit_json(report.to_json())  # what would be approved: for an agent to show its user
        return 1
    if pending and not args.yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise CvfsError(
                "nothing approved: not asked on a terminal",
                hint="run `git cvfs trust --yes` to approve what is listed above",
            )
        sys.stderr.write("Approve? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            output.info("git-cvfs: nothing approved")
            return 1
    if pending:
        trust.approve_pending(ws, report)
    if args.json:
        output.emit_json(report.to_json())
    else:
        for entry in pending:
            where = "this repository's .git/config" if entry.local else "~/.gitconfig"
            output.info(f"git-cvfs: approved {entry.location} (in {where})")
        if pending:
            output.info("hint: `git cvfs ensure` materializes the files a clone left as refs")
    return 0


def _show(report: TrustReport) -> None:
    for e in report.entries:
        if e.forbidden:
            state = "refused: " + e.forbidden
        elif not e.needs_approval:
            state = "yours (set in your own git config or environment)"
        elif e.local:
            state = "approved for this repository" if e.approved else "NOT APPROVED (this machine's default archive)"
        else:
            state = "approved" if e.approved else "NOT APPROVED (set by .cvfs/config)"
        output.data(f'archive "{e.name}"  {e.location}  {state}')
    pending = report.pending
    if pending:
        output.info(
            "Approving lets git-cvfs sign requests to these locations with your credentials (for a directory:\n"
            "read and write it), for this repository and every other one on this machine that names them."
        )
        if any(e.local for e in pending):
            output.info(
                "This machine's default archive holds the objects of every repository here that names no archive;\n"
                "approving it lets this repository read them. That approval is kept in this repository only."
            )
