from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.ensure import fetch
from git_cvfs.core.model.workspace import Workspace


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: everything)")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    result = fetch(ws, args.paths)
    if args.json:
        output.emit_json({"ok": not result.failed, "fetched": result.materialized, "failed": result.failed})
    else:
        for path, why in sorted(result.failed.items()):
            output.error(f"{path}: {why}")
        output.info(f"git-cvfs: {len(result.materialized)} object(s) in the cache, {len(result.failed)} failed")
    return 1 if result.failed else 0
