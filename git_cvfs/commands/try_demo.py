from __future__ import annotations

import argparse
from pathlib import Path

from git_cvfs import output
from git_cvfs.core.demo import run_demo


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", type=Path, metavar="DIR", help="where to build the demo (default: a new temp dir)")


def run(name: str, args: argparse.Namespace) -> int:
    run_demo(args.path, output.data)
    return 0
