"""`git cvfs mount [--rev REV] DIR`, `git cvfs mount --status DIR`, `git cvfs umount DIR`."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core import mount
from git_cvfs.format.size import format_size, parse_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="the directory the tree appears at")
    if name == "mount":
        parser.add_argument("--rev", default="HEAD", help="the revision to show (default HEAD)")
        parser.add_argument(
            "--budget",
            metavar="SIZE",
            help="keep what the mount fetched under SIZE (e.g. 20G): least recently read objects are "
            "dropped from the cache and fetched again when read",
        )
        parser.add_argument("--status", action="store_true", help="hydrated, pending and failed files of a mount")
        parser.add_argument("--foreground", action="store_true", help="serve in this process until unmounted")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    if name == "umount":
        done = mount.umount(args.directory)
        if args.json:
            output.emit_json({"mountpoint": args.directory, "result": done})
        else:
            output.info(f"git-cvfs: {args.directory}: {done}")
        return 0
    if args.status:
        return _status(args)
    from git_cvfs.core.model.workspace import Workspace

    budget = parse_size(args.budget, what="--budget") if args.budget else None
    ws = Workspace.discover()
    if args.foreground:
        return mount.serve(ws, args.directory, rev=args.rev, budget=budget)
    m = mount.mount(ws, args.directory, rev=args.rev, budget=budget)
    if args.json:
        output.emit_json(m.to_json())
        return 0
    output.info(
        f"git-cvfs: mounted {m.rev} ({m.commit[:12]}) at {args.directory} in {m.seconds:.2f} s: "
        f"{m.files} file(s), {m.managed} managed ({format_size(m.managed_bytes)}), read-only"
    )
    output.info(
        f"hint: files hydrate when read; `git cvfs mount --status {args.directory}` shows progress, "
        f"`git cvfs umount {args.directory}` ends it"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    s = mount.mount_status(args.directory)
    if args.json:
        output.emit_json(s)
        return 0
    output.data(f"{s['mountpoint']}: {s['rev']} ({str(s['commit'])[:12]}) of {s['repository']}, pid {s['pid']}")
    for what in ("hydrated", "pending", "failed"):
        c = s[what]
        output.data(f"  {what:<9} {c['files']:>7} file(s)  {format_size(c['bytes'])}")
    output.data(f"  managed   {s['managed']:>7} file(s)  {format_size(s['managed_bytes'])}")
    if s.get("budget") is not None:
        output.data(
            f"  budget    {format_size(s['budget'])}: {format_size(s['fetched_bytes'])} fetched by the mount, "
            f"{s['evicted']} evicted"
        )
    if s.get("log"):
        output.data(f"  log       {s['log']}")
    return 0
