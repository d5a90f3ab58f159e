from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.status import status
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="limit to these files or directories")
    if name == "status":
        parser.add_argument(
            "--drift", action="store_true", help="also audit inventory and archives (reconcile); exit 1 on drift"
        )
    if name == "status":
        parser.add_argument(
            "--offline", action="store_true", help="pending uploads from this machine's records; ask no archive"
        )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    from git_cvfs.local.git import Repo

    ws = Workspace(Repo.discover_bare() if name == "ls-files" else Repo.discover())
    if ws.repo.bare:
        return _ls_files_bare(ws, args.json)
    args.paths = work_from_top(ws, args.paths)
    # ls-files lists; status asks the primary archive what it lacks (unless --offline).
    report = status(ws, args.paths, offline=name == "ls-files" or args.offline)
    drift = None
    if getattr(args, "drift", False):
        from git_cvfs.core.reconcile import reconcile

        drift = reconcile(ws, orphans=False, fix_index=False, from_blob=False)  # sizes and etags; no read-back
    if args.json:
        doc = report.to_json() if name == "status" else [report.entry(f) for f in report.files]
        if drift is not None and isinstance(doc, dict):
            doc["drift"] = drift.to_json()
        output.emit_json(doc)
        return 1 if drift is not None and not drift.ok else 0
    if name == "ls-files":
        for f in report.files:
            ref = f.target
            oid = ref.hex[:12] if ref else "-" * 12
            size = format_size(f.size)
            output.data(f"{f.state.value:<12} {oid} {size:>10}  {f.path}")
        return 0
    totals = report.totals()
    output.data(f"{len(report.files)} managed file(s)")
    for state in ("materialized", "ref", "modified", "missing", "plain", "invalid", "sparse"):
        if state in totals:
            t = totals[state]
            output.data(f"  {state:<13} {t['files']:>6}  {format_size(t['bytes']):>10}")
    if report.budget is not None:
        over = " (over: `git cvfs offload --budget` or push, then offload)" if report.used > report.budget else ""
        output.data(f"  worktree.budget {format_size(report.used)} of {format_size(report.budget)} in use{over}")
    if report.pending_upload:
        output.data(f"  pending upload {len(report.pending_upload):>5}  (run `git cvfs push`)")
    if report.checked == "records":
        asked = "the primary archive could not be asked" if report.archive_errors else "no archive was asked"
        output.data(f"(pending uploads from this machine's records: {asked})")
    for path in report.outside_scope:
        output.data(
            f"ref outside scope: {path} (a clone gets the JSON: `git cvfs track` its directory, or move it back)"
        )
    for archive, why in report.archive_errors.items():
        output.data(f"could not ask archive {archive} what it holds: {why}")
    if "ref" in totals:
        output.data("hint: `git cvfs ensure PATH` materializes refs")
    if drift is not None:
        kinds = sorted({f.kind for f in drift.findings})
        none = "drift: none (archives asked for size and etag; `git cvfs reconcile --verify` hashes their copies)"
        output.data(none if drift.ok else f"drift: {len(drift.findings)} finding(s): {', '.join(kinds)}")
        if not drift.ok:
            output.data("hint: `git cvfs reconcile` lists them")
        return 0 if drift.ok else 1
    return 0


def _ls_files_bare(ws: Workspace, as_json: bool) -> int:
    """A bare repository has no work tree: its managed files are the refs at HEAD, all refs."""
    from git_cvfs.core.bare import head_refs

    files, _ = head_refs(ws)
    if as_json:
        output.emit_json(
            [{"path": f.path, "state": "ref", "oid": f.ref.oid, "size": f.ref.size, "cached": False} for f in files]
        )
        return 0
    for f in files:
        output.data(f"{'ref':<12} {f.ref.hex[:12]} {format_size(f.ref.size):>10}  {f.path}")
    return 0
