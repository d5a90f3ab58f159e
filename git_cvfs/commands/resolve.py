"""`git cvfs resolve PATH`: everything about one managed path, as JSON (for agents)."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.pathspecs import work_from_top
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.resolve import resolve


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a managed path")
    # resolve answers in JSON always; --json is accepted so that every read command takes it.
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout (always)")


def run(name: str, args: argparse.Namespace) -> int:
    ws = Workspace.discover()
    output.emit_json(resolve(ws, work_from_top(ws, [args.path])[0]))
    return 0
