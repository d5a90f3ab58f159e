from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.setup import install, uninstall
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--global",
        dest="scope",
        action="store_const",
        const="global",
        help="in ~/.gitconfig (default); touches no repository: hooks go into each one at "
        "`git cvfs init`, or at the first `git add` or checkout that runs the filter there",
    )
    where.add_argument(
        "--local",
        dest="scope",
        action="store_const",
        const="local",
        help="in this repository's .git/config, and its hooks installed (or repaired) now",
    )
    parser.set_defaults(scope="global")
    if name == "install":
        # What --global now always does; kept so that older scripts still run.
        parser.add_argument("--skip-repo", action="store_true", help=argparse.SUPPRESS)


def run(name: str, args: argparse.Namespace) -> int:
    # Only --local touches a repository: `install --global` run from inside some checkout
    # must not write hooks into it.
    repo = Repo.find() if args.scope == "local" else None
    if args.scope == "local" and repo is None:
        from git_cvfs.errors import UsageError

        raise UsageError(
            "--local needs a repository, and this is not inside one",
            hint="cd into the repository, or use `git cvfs install --global`",
        )
    op = install if name == "install" else uninstall
    report = op(scope=args.scope, repo=repo)
    verb = "set" if name == "install" else "removed"
    where = "~/.gitconfig" if args.scope == "global" else ".git/config"
    if report.config_set:
        output.info(f"git-cvfs: {verb} filter.cvfs, diff.cvfs and merge drivers in {where}")
    else:
        output.info(f"git-cvfs: nothing to remove in {where}")
    for line in report.hooks:
        output.info(f"git-cvfs: {line}")
    if any("block" in line for line in report.hooks):
        output.info("hint: these hook scripts are committed: `git add` them and commit, so the team runs git-cvfs too")
    if repo is None and name == "install":
        output.info(
            "git-cvfs: no repository touched: hooks go into each one at `git cvfs init`, or at the first "
            "`git add` or checkout there (`git cvfs install --local` puts them in the current one now)"
        )
    return 0
