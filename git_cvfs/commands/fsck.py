"""`git cvfs fsck`: every cache object hashes to its name, every ref is valid, the shards parse."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.fsck import fsck
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.local.git import Repo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true", help="remove corrupt cache objects (the archive has them)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    f = fsck(Workspace(Repo.discover_bare()), repair=args.repair)  # a server's bare repository too
    if args.json:
        output.emit_json(f.to_json())
        return 0 if f.ok else 1
    for h in f.corrupt_objects:
        output.data(f"corrupt cache object sha256:{h}" + (" (removed)" if args.repair else ""))
    for path, why in sorted(f.bad_refs.items()):
        output.data(f"bad ref {path}: {why}")
    if f.inventory_error:
        output.data(f"inventory: {f.inventory_error}")
    if f.stale_tmp_removed:
        output.data(f"removed {f.stale_tmp_removed} temporary file(s) that crashed runs left behind")
    output.data(f"checked {f.objects_checked} cache object(s): " + ("ok" if f.ok else "problems found"))
    return 0 if f.ok else 1
