"""`git cvfs migrate info|import|export [--include PATTERN]... [--above SIZE] [--from-lfs] [--everything | REV...]`."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.migrate.info import migrate_info
from git_cvfs.core.migrate.rewrite import RewriteResult, select_revs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import UsageError
from git_cvfs.format.size import format_size, parse_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["info", "import", "export"],
        help="info: what across history would become refs; import: rewrite history so they are refs "
        "(archived first); export: rewrite refs back into plain git blobs",
    )
    parser.add_argument(
        "revs",
        nargs="*",
        metavar="REV",
        help="branches or tags whose history to read or rewrite (default: the current branch)",
    )
    parser.add_argument(
        "--everything", action="store_true", help="import, export: every local branch and tag; info: every ref"
    )
    parser.add_argument("--above", metavar="SIZE", help="files at or above SIZE (default: scope.minSize)")
    parser.add_argument(
        "--include", action="append", default=[], metavar="PATTERN", help="only paths matching (gitignore-style)"
    )
    parser.add_argument(
        "--from-lfs",
        action="store_true",
        help="import: Git LFS pointers become refs (objects from `git lfs fetch --all`)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    _refuse_options_that_do_nothing(args)
    ws = Workspace.discover()
    above = parse_size(args.above, what="--above") if args.above else None
    if args.action == "info":
        return _info(ws, args, above if above is not None else ws.settings.min_size)
    revs = select_revs(ws, args.revs, everything=args.everything)
    if args.action == "import":
        from git_cvfs.core.migrate.to_refs import migrate_import

        result = migrate_import(ws, revs, include=args.include, above=above, from_lfs=args.from_lfs)
        if args.json:
            output.emit_json(result.to_json())
            return 0
        what = "Git LFS file(s)" if args.from_lfs else "blob(s)"
        output.data(
            f"{result.objects} {what}, {format_size(result.bytes)}, are refs now; their bytes are in "
            f"{', '.join(result.archives)} (verified; {result.uploaded} uploaded)"
        )
        if result.inlined:
            output.data(f"{result.inlined} Git LFS file(s) below minSize are plain git blobs again")
        if result.min_size_set is not None:
            output.data(
                f".cvfs/config: scope.minSize set to {format_size(result.min_size_set)}, as imported; commit it"
            )
    else:
        from git_cvfs.core.migrate.to_blobs import migrate_export

        exported = migrate_export(ws, revs)
        if args.json:
            output.emit_json(exported.to_json())
            return 0
        output.data(f"{exported.objects} ref(s), {format_size(exported.bytes)}, are plain git blobs again")
        _report(exported.rewrite, everything=args.everything, named=bool(args.revs))
        return 0
    _report(result.rewrite, everything=args.everything, named=bool(args.revs))
    return 0


def _report(rewrite: RewriteResult, *, everything: bool, named: bool) -> None:
    output.data(f"rewrote {rewrite.changed} of {rewrite.commits} commit(s); {len(rewrite.refs)} ref(s) moved:")
    for change in rewrite.refs:
        output.data(f"  {change.name}  {change.old[:12]} -> {change.new[:12]}")
    if rewrite.refs:
        output.data(f"the originals are kept under {rewrite.backup}/ (see docs/bringing-an-existing-repository.md)")
    if rewrite.worktree_updated:
        output.data("the work tree now holds the rewritten HEAD")
    if not everything and not named:
        output.data("only the current branch was rewritten: --everything rewrites every branch and tag")
    if rewrite.push:
        output.data("to publish, force-push (everyone then clones again, or resets to the new commits):")
        for command in rewrite.push:
            output.data(f"  {command}")


def _info(ws: Workspace, args: argparse.Namespace, above: int) -> int:
    revs = ["--all"] if args.everything else (args.revs or ["HEAD"])
    info = migrate_info(ws, revs, above=above, include=args.include)
    if args.json:
        output.emit_json(info.to_json())
        return 0
    if info.patterns:
        width = max(len("pattern"), *(len(p.pattern) for p in info.patterns))
        output.data(f"{'pattern':<{width}}  {'blobs':>6}  {'total':>10}  {'largest':>10}  paths")
        for p in info.patterns:
            output.data(
                f"{p.pattern:<{width}}  {p.blobs:>6}  {format_size(p.bytes):>10}  {format_size(p.largest):>10}  {len(p.paths)}"
            )
    total = sum(p.bytes for p in info.patterns)
    output.data(
        f"{sum(p.blobs for p in info.patterns)} blob(s), {format_size(total)}, at or above {format_size(above)} "
        f"in the history of {'every ref' if args.everything else ' '.join(revs)}; "
        f"{info.below} blob(s), {format_size(info.below_bytes)}, below it"
    )
    return 0


def _refuse_options_that_do_nothing(args: argparse.Namespace) -> None:
    ignored = {
        "info": [("--from-lfs", args.from_lfs)],
        "import": [],
        "export": [("--from-lfs", args.from_lfs), ("--above", args.above), ("--include", args.include)],
    }[args.action]
    given = [option for option, value in ignored if value]
    if given:
        raise UsageError(
            f"{', '.join(given)} does nothing with `migrate {args.action}`",
            hint="export turns every ref back into its bytes; --from-lfs goes with import",
        )
