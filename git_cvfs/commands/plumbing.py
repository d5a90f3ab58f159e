"""Commands git runs for us: textconv, merge drivers, hooks."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from git_cvfs import output
from git_cvfs.errors import RefError
from git_cvfs.format.inventory import merge_rows_3way
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.format.size import format_size


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "textconv":
        parser.add_argument("file")
    elif name in ("merge-ref", "merge-index"):
        for arg in ("base", "ours", "theirs", "path"):
            parser.add_argument(arg)
    elif name == "hook-impl":
        parser.add_argument("hook")
        parser.add_argument("hook_args", nargs=argparse.REMAINDER)


def run(name: str, args: argparse.Namespace) -> int:
    if name == "textconv":
        return textconv(Path(args.file))
    if name == "merge-ref":
        return merge_ref(args)
    if name == "merge-index":
        return merge_index(args)
    from git_cvfs.commands.hook_fast import run_hook

    return run_hook(args.hook, args.hook_args)


def textconv(path: Path) -> int:
    """What `git diff` shows for a managed file: its oid and size, the same whether
    git hands over the ref or the bytes (it smudges the old side first)."""
    with open(path, "rb") as f:
        head = f.read(MAX_REF_BYTES + 1)
        try:
            ref = parse_ref(head)
        except RefError as exc:
            output.data(f"invalid git-cvfs ref: {exc.message}")
            return 0
        if ref is None:
            h = hashlib.sha256(head)
            size = len(head)
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
            ref = Ref(h.hexdigest(), size)
    output.data(f"oid {ref.oid}\nsize {ref.size} ({format_size(ref.size)})")
    return 0


def merge_ref(args: argparse.Namespace) -> int:
    """Both sides changed a managed file: that is a real conflict. Keep ours in place and say so."""
    output.error(
        f"{args.path}: changed on both sides; kept our version",
        hint=f"pick one: `git checkout --theirs -- {args.path}` or `--ours`, then `git add {args.path}`",
    )
    return 1


def merge_index(args: argparse.Namespace) -> int:
    """Three-way merge of an inventory shard by path, streamed: git's three temporary files are
    read a row at a time and the result written beside `ours`, then renamed over it."""
    from git_cvfs.local.index_store import read_rows

    conflicts: list[str] = []
    count = 0
    ours = Path(args.ours)
    tmp = ours.with_name(ours.name + ".cvfs-merge")
    try:
        with (
            read_rows(Path(args.base), args.path) as base,
            read_rows(ours, args.path) as mine,
            read_rows(Path(args.theirs), args.path) as theirs,
            open(tmp, "wb") as out,
        ):
            for path, chosen, conflict in merge_rows_3way(base, mine, theirs):
                if conflict:
                    count += 1
                    if len(conflicts) < 5:
                        conflicts.append(path)
                if chosen is not None:
                    out.write(chosen.encode())
        os.replace(tmp, ours)
    finally:
        tmp.unlink(missing_ok=True)
    if count:
        output.error(
            f"{args.path}: {count} row(s) changed differently on both sides: {', '.join(conflicts)}",
            hint="resolve the managed files themselves; the pre-commit hook rewrites their rows",
        )
        return 1
    return 0
