from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.offload import offload, plan_budget
from git_cvfs.errors import UsageError
from git_cvfs.format.size import format_size, parse_size

_REFUSED_HINT = "nothing was changed for the files named; fix what each line says, then run it again"


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to offload")
    parser.add_argument("--dry-run", action="store_true", help="list what would be freed; change nothing")
    parser.add_argument("--budget", metavar="SIZE", help="offload least recently used files until the rest fit in SIZE")
    parser.add_argument("--apply", action="store_true", help="with --budget: carry out the plan (default: show it)")
    parser.add_argument(
        "--offline", action="store_true", help="with --dry-run: this machine's records, not the archives"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    # A flag that would change nothing is refused, not ignored: `--offline` asks for no
    # network, and offloading must ask the archives; `--apply` asks for a plan to be carried
    # out, and offloading named paths has none (it acts at once).
    dry = args.dry_run or (args.budget is not None and not args.apply)
    if args.offline and not dry:
        raise UsageError(
            "--offline goes with --dry-run: offloading asks the archives to show they hold each file",
            hint="git cvfs offload --dry-run --offline PATH",
        )
    if args.apply and args.budget is None:
        raise UsageError(
            "--apply goes with --budget: offloading named paths acts at once, no plan to apply",
            hint="git cvfs offload PATH (or --dry-run first to see what it would free)",
        )
    ws = Workspace.discover()
    args.paths = work_from_top(ws, args.paths)
    if args.budget is not None:
        if args.paths:
            raise UsageError("give either paths or --budget, not both", hint="git cvfs offload --budget 50GB")
        files = plan_budget(ws, parse_size(args.budget, what="--budget"))
        result = offload(ws, [], dry_run=dry, offline=args.offline, files=files)
    else:
        if not args.paths:
            raise UsageError("name the files or directories to offload", hint="git cvfs offload --dry-run data/")
        result = offload(ws, args.paths, dry_run=dry, offline=args.offline)
    if args.json:
        output.emit_json(result.to_json())
        return 0 if result.ok else 1
    refused = [item for item in result.items if item.refused]
    for item in result.items:
        if item.refused:
            last = item is refused[-1]
            hint = (next((i.hint for i in refused if i.hint), None) or _REFUSED_HINT) if last else None
            output.error(f"{item.path}: not offloaded: {item.refused}", hint)
        else:
            verb = "would offload" if result.dry_run else "offloaded"
            if item.registers:  # not managed before: registered and archived in the same step
                verb = "would register, archive and offload" if result.dry_run else "registered, archived, offloaded"
            output.data(f"{verb} {item.path}  {format_size(item.size)}  {item.url}")
    if result.dry_run and result.checked == "records":
        output.data("(from this machine's records: no archive was asked)")
    total = "would free" if result.dry_run else "freed"
    output.data(f"{total} {format_size(result.freed)} in {sum(1 for i in result.items if not i.refused)} file(s)")
    if result.dry_run and any(not item.refused for item in result.items):  # something to do
        if args.budget:
            output.info("hint: run it again with --apply to do it")
        else:
            output.info("hint: run it again without --dry-run to do it")
    return 0 if result.ok else 1
