"""`git cvfs resolve PATH`: everything about one managed path, as JSON (for agents)."""

from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.resolve import resolve


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a managed path")
    # resolve answers in JSON always; --json is accepted so that every read command takes it.
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout (always)")


def run(name: str, args: argparse.Namespace) -> int:
    output.emit_json(resolve(Workspace.discover(), args.path))
    return 0
