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
        "--create", action="store_true", help="create the directory, bucket or container when it does not exist"
    )
    parser.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="do not look at the archive now (offline set-up); `git cvfs doctor --probe` checks it later",
    )
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
        create=args.create,
        probe=args.probe,
    )
    if args.archive is None and (args.create or not args.probe):
        output.warn("--create and --no-probe go with --archive; nothing to do for them here")
    for path in report.created:
        output.info(f"git-cvfs: wrote {path}")
    output.info(
        f"git-cvfs: primary archive {report.archive_url}" + (f" ({report.location})" if report.location else "")
    )
    if report.machine_local:
        output.warn(
            "the primary archive is a directory on this machine only: teammates and CI cannot reach it, "
            "and a clone elsewhere gets refs it cannot fill",
            hint="for a team, name a shared archive: `git cvfs init --archive s3://BUCKET/PREFIX` "
            "(or az://ACCOUNT/CONTAINER/PREFIX, or file:///a/shared/mount)",
        )
    if report.approved:
        output.info(f"git-cvfs: approved {report.approved} on this machine (`git cvfs trust --list`)")
    if report.install:
        for line in report.install.hooks:
            output.info(f"git-cvfs: {line}")
        if any("block" in line for line in report.install.hooks):
            output.info("git-cvfs: the hook scripts above are committed: `git add` them with the rest")
    output.info("git-cvfs: next: `git cvfs track 'data/**'`, then git add and commit as usual")
    return 0
