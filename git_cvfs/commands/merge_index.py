"""`git cvfs merge-index BASE OURS THEIRS PATH` (merge=cvfs-index, run by git): inventory shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from git_cvfs.core.plumbing.merge_index import merge_shards


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    for arg in ("base", "ours", "theirs", "path"):
        parser.add_argument(arg)


def run(name: str, args: argparse.Namespace) -> int:
    merge_shards(Path(args.base), Path(args.ours), Path(args.theirs), args.path)
    return 0
