"""The merge driver of inventory shards (merge=cvfs-index in .gitattributes)."""

from __future__ import annotations

import os
from pathlib import Path

from git_cvfs.format.inventory import merge_rows_3way
from git_cvfs.local.index_store import read_rows


def merge_shards(base: Path, ours: Path, theirs: Path, path: str) -> None:
    """Three-way merge of an inventory shard by path, streamed: git's three temporary files are
    read a row at a time and the result written beside `ours`, then renamed over it.

    Rows are records of the refs, not content to choose between: where both sides changed a
    path's row differently, ours is kept and the merge goes on. The commit that concludes the
    merge (pre-merge-commit for git merge's own, pre-commit after a resolution) rewrites the
    rows of every changed managed file from the refs it holds, whichever side -X or the user
    chose. A conflict here would only stop `git merge -X theirs` for no reason."""
    tmp = ours.with_name(ours.name + ".cvfs-merge")
    try:
        with (
            read_rows(base, path) as base_rows,
            read_rows(ours, path) as our_rows,
            read_rows(theirs, path) as their_rows,
            open(tmp, "wb") as out,
        ):
            for _path, chosen, _conflict in merge_rows_3way(base_rows, our_rows, their_rows):
                if chosen is not None:
                    out.write(chosen.encode())
        os.replace(tmp, ours)
    finally:
        tmp.unlink(missing_ok=True)
