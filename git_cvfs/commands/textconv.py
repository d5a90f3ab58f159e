"""`git cvfs textconv FILE` (diff.cvfs.textconv, run by git): a managed file as git diff shows it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from git_cvfs.core.plumbing.textconv import textconv


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file")


def run(name: str, args: argparse.Namespace) -> int:
    sys.stdout.buffer.write(textconv(Path(args.file)))
    return 0
