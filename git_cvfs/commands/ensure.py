from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.ensure import EnsureResult, ensure
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import UsageError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: everything)")
    if name == "ensure":
        parser.add_argument("--check-only", action="store_true", help="report refs, change nothing; exit 1 if any")
        parser.add_argument(
            "--target-root",
            metavar="DIR",
            help="write the files' data under DIR (a scratch disk) instead of the work tree, which stays as it is",
        )
        parser.add_argument("--source", metavar="NAME", help="read from this archive only (primary or secondary)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    target_root = getattr(args, "target_root", None)
    if target_root:  # from where the user is, before the move to the top
        args.target_root_abs = Path(target_root).resolve()
    below_top = os.path.realpath(os.getcwd()) != os.path.realpath(ws.repo.root)
    args.paths = work_from_top(ws, args.paths)
    check_only = name == "preflight" or args.check_only
    source = getattr(args, "source", None)
    if target_root:
        if check_only:
            raise UsageError("--target-root writes files; --check-only writes none", hint="give one of them")
        return _into(ws, args, source)
    result = ensure(ws, args.paths, check_only=check_only, source=source)
    if args.json:
        output.emit_json(result.to_json())
        return 0 if result.ok else 1
    for path, why in sorted(result.failed.items()):
        output.error(f"{path}: {why}")
    if check_only:
        for path in result.still_refs:
            output.data(path)
        if result.still_refs:
            output.info(f"git-cvfs: {len(result.still_refs)} file(s) are refs, not data")
            named = [f":/{p}" if below_top else p for p in args.paths]  # from where the user is
            output.info(
                f"hint: git cvfs ensure {' '.join(shlex.quote(p) for p in named) or (':/' if below_top else '.')}"
            )
        return 0 if result.ok else 1
    output.info(
        f"git-cvfs: materialized {len(result.materialized)} file(s); "
        f"{len(result.already)} already present; {len(result.failed)} failed"
    )
    if result.budget is not None:
        from git_cvfs.core.budget import report

        report(result.budget)
    missing = [p for p in result.missing if p not in result.failed]
    if missing:
        output.info(f"git-cvfs: {len(missing)} file(s) not in the work tree (deleted): {_some(missing)}")
    other = [p for p in result.failed if p not in result.missing]
    if result.missing:
        output.info(f"hint: `git checkout -- {_quoted(result.missing)}` restores deleted files")
    if other and len(result.changed_underfoot) == len(other):
        output.info("hint: files changed while ensure ran (a checkout or an edit); run `git cvfs ensure` again")
    elif other:
        _hints(
            result, other, "run `git cvfs ensure` again once the archive is reachable; nothing was changed for those"
        )
    return 0 if result.ok else 1


def _hints(result: EnsureResult, failed: list[str], otherwise: str) -> None:
    """The fix for each cause the failures name (a full disk, say), once; `otherwise` for the rest."""
    named = [result.hints[p] for p in failed if p in result.hints]
    for hint in dict.fromkeys(named):
        output.info(f"hint: {hint}")
    if len(named) < len(failed):
        output.info(f"hint: {otherwise}")


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _quoted(paths: list[str]) -> str:
    return " ".join(shlex.quote(f":/{p}") for p in paths[:3]) + (" ..." if len(paths) > 3 else "")


def _into(ws: Workspace, args: argparse.Namespace, source: str | None) -> int:
    from git_cvfs.core.ensure import ensure_into

    result = ensure_into(ws, args.paths, args.target_root_abs, source=source)
    if args.json:
        doc = result.to_json()
        doc["target_root"] = str(args.target_root_abs)
        output.emit_json(doc)
        return 0 if result.ok else 1
    for path, why in sorted(result.failed.items()):
        output.error(f"{path}: {why}")
    output.info(
        f"git-cvfs: wrote {len(result.materialized)} file(s) under {args.target_root}; "
        f"{len(result.already)} already there; {len(result.failed)} failed"
    )
    if result.failed:
        _hints(result, list(result.failed), "run it again once the archive is reachable; files already there are kept")
    return 0 if result.ok else 1
