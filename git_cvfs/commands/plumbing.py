"""Commands git runs for us: textconv, merge drivers, hooks."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
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
    from git_cvfs.commands.hook_gate import run_hook

    return run_hook(args.hook, args.hook_args)


# A managed path below minSize stays a plain blob: text that size or under diffs as itself.
TEXT_MAX = 1 << 20


def textconv(path: Path) -> int:
    """What `git diff`, `git log -p` and blame show for a managed file: for data (a ref, or the
    bytes it stands for) its oid and size, the same either way; for a small text file kept as
    a plain blob, the text itself."""
    with open(path, "rb") as f:
        head = f.read(MAX_REF_BYTES + 1)
        try:
            ref = parse_ref(head)
        except RefError as exc:
            output.data(f"invalid git-cvfs ref: {exc.message}")
            return 0
        if ref is None:
            rest = f.read(TEXT_MAX + 1 - len(head))
            text = head + rest
            if len(text) <= TEXT_MAX and b"\0" not in text:
                sys.stdout.buffer.write(text)
                return 0
            h = hashlib.sha256(text)
            size = len(text)
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
    read a row at a time and the result written beside `ours`, then renamed over it.

    Rows are records of the refs, not content to choose between: where both sides changed a
    path's row differently, ours is kept and the merge goes on. The commit that concludes the
    merge (pre-merge-commit for git merge's own, pre-commit after a resolution) rewrites the
    rows of every changed managed file from the refs it holds, whichever side -X or the user
    chose. A conflict here would only stop `git merge -X theirs` for no reason."""
    from git_cvfs.local.index_store import read_rows

    ours = Path(args.ours)
    tmp = ours.with_name(ours.name + ".cvfs-merge")
    try:
        with (
            read_rows(Path(args.base), args.path) as base,
            read_rows(ours, args.path) as mine,
            read_rows(Path(args.theirs), args.path) as theirs,
            open(tmp, "wb") as out,
        ):
            for _path, chosen, _conflict in merge_rows_3way(base, mine, theirs):
                if chosen is not None:
                    out.write(chosen.encode())
        os.replace(tmp, ours)
    finally:
        tmp.unlink(missing_ok=True)
    return 0
