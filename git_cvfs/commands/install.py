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
        help="in ~/.gitconfig (default); hooks too when run inside a repository",
    )
    where.add_argument(
        "--local", dest="scope", action="store_const", const="local", help="in this repository's .git/config only"
    )
    parser.set_defaults(scope="global")
    if name == "install":
        parser.add_argument(
            "--skip-repo", action="store_true", help="only the git config: no hooks in the current repository"
        )


def run(name: str, args: argparse.Namespace) -> int:
    repo = None if getattr(args, "skip_repo", False) else Repo.find()
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
    if repo is None and name == "install" and not getattr(args, "skip_repo", False):
        output.info("git-cvfs: not in a repository, so no hooks installed; the filter installs them on first use")
    return 0
