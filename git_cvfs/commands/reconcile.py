from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.reconcile import reconcile
from git_cvfs.errors import UsageError
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fix-index", action="store_true", help="rewrite inventory rows from the refs and archives")
    parser.add_argument(
        "--from-blob", action="store_true", help="rebuild the inventory from refs plus archive listings"
    )
    parser.add_argument("--orphans", action="store_true", help="also list archive objects nothing references")
    parser.add_argument(
        "--verify", action="store_true", help="also read back and hash the archives' copies (finds bit rot)"
    )
    parser.add_argument(
        "--sample", metavar="N%", help="with --verify: read back a random N percent of each archive's objects"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    sample = 100.0
    if args.sample is not None:
        text = args.sample.rstrip("%")
        try:
            sample = float(text)
        except ValueError:
            sample = -1.0
        if not 0 < sample <= 100 or not args.verify:
            raise UsageError(
                f"--sample {args.sample!r}: a percentage above 0 and at most 100, with --verify",
                hint="git cvfs reconcile --verify --sample 10%",
            )
    ws = Workspace(Repo.discover_bare())
    if ws.repo.bare:  # a server's repository: what its refs hold, against every archive
        if args.fix_index or args.from_blob or args.orphans or args.verify:
            raise UsageError(
                "a bare repository has no work tree: --fix-index, --from-blob, --orphans and --verify need one",
                hint="run plain `git cvfs reconcile` here, or those in a clone",
            )
        from git_cvfs.core.bare import reconcile_bare

        report = reconcile_bare(ws)
    else:
        report = reconcile(
            ws,
            orphans=args.orphans,
            fix_index=args.fix_index,
            from_blob=args.from_blob,
            verify=args.verify,
            sample=sample,
        )
    if args.json:
        output.emit_json(report.to_json())
        return 0 if report.ok else 1
    for f in report.findings:
        where = f" [{f.archive}]" if f.archive else ""
        output.data(f"{f.kind:<19}{where} {f.path}: {f.detail}")
    if report.omitted:
        output.data(f"... and {report.omitted} more finding(s) not listed")
    if report.fixed:
        output.data(f"rewrote {len(report.fixed) + report.fixed_omitted} inventory row(s) in .cvfs/index; commit them")
    elif report.outdated:
        output.info(
            f"git-cvfs: {len(report.outdated)} inventory row(s) do not record copies this machine verified since "
            f"(first: {report.outdated[0]}); `git cvfs reconcile --fix-index` records them, then commit .cvfs/index"
        )
    if args.verify:
        output.data(f"read back and hashed {report.read_back} archived object(s)")
    # "no drift" must not claim more than was looked at: without --verify the archives were
    # asked what they hold (size, etag), and no stored byte was read.
    unread = "" if args.verify else " (archives asked for size and etag; --verify hashes their copies)"
    output.data(
        f"checked {report.checked_paths} path(s): "
        + (f"no drift{unread}" if report.ok else f"{len(report.findings) + report.omitted} finding(s)")
    )
    return 0 if report.ok else 1
