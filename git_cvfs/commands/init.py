from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.setup import init
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        metavar="URL",
        help="primary archive: file:///dir, s3://bucket/prefix, az://account/container/prefix",
    )
    parser.add_argument("--endpoint", metavar="URL", help="S3-compatible endpoint or Azure service URL")
    parser.add_argument("--region", metavar="REGION", help="S3 region")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile from ~/.aws/config")
    parser.add_argument(
        "--skill", action="store_true", help="also write an agent skill file (Claude skills, Cursor rules)"
    )


def run(name: str, args: argparse.Namespace) -> int:
    repo = Repo.discover()
    report = init(
        repo,
        archive_url=args.archive,
        endpoint=args.endpoint,
        region=args.region,
        profile=args.profile,
        skill=args.skill,
    )
    for path in report.created:
        output.info(f"git-cvfs: wrote {path}")
    output.info(f"git-cvfs: primary archive {report.archive_url}")
    if report.approved:
        output.info(f"git-cvfs: approved {report.approved} on this machine (`git cvfs trust --list`)")
    if report.install:
        for line in report.install.hooks:
            output.info(f"git-cvfs: {line}")
        if any("block" in line for line in report.install.hooks):
            output.info("git-cvfs: the hook scripts above are committed: `git add` them with the rest")
    output.info("git-cvfs: next: `git cvfs track 'data/**'`, then git add and commit as usual")
    return 0
