"""`git cvfs hook-impl HOOK [ARGS]` (run by the installed hook shims). cli.py hands git's own calls
to commands/hook_gate.py before argparse; this is the same with options parsed."""

from __future__ import annotations

import argparse

from git_cvfs.commands.hook_gate import run_hook


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hook")
    parser.add_argument("hook_args", nargs=argparse.REMAINDER)


def run(name: str, args: argparse.Namespace) -> int:
    return run_hook(args.hook, args.hook_args)
