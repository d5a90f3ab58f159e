from __future__ import annotations

import argparse

from git_cvfs import output
from git_cvfs.core.doctor import doctor
from git_cvfs.core.model.workspace import Workspace


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", action="store_true", help="also ask each archive for an object (read access)")
    parser.add_argument("--roundtrip", action="store_true", help="also write, read back and delete a test object")
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(name: str, args: argparse.Namespace) -> int:
    from git_cvfs.crash import fault_point

    fault_point("doctor:start")  # the tests' stand-in for a bug, anywhere
    checks = doctor(Workspace.discover(), probe=args.probe, roundtrip=args.roundtrip)
    failed = [c for c in checks if not c.ok]
    if args.json:
        output.emit_json({"ok": not failed, "checks": [c.to_json() for c in checks]})
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        output.data(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.hint:
            output.data(f"      {'':<{width}}  hint: {c.hint}")
    if failed:
        noun = "check" if len(failed) == 1 else "checks"
        output.error(f"{len(failed)} {noun} failed, first: {failed[0].name}", failed[0].hint)
    return 1 if failed else 0
