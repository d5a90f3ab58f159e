"""`migrate export`: the way out. Every ref at a filter=cvfs path becomes a plain git blob with
the object's bytes (fetched and verified first, all of them, before anything is rewritten);
filter=cvfs leaves .gitattributes, and the inventory shards leave each commit. The archives
are not touched: `git cvfs gc` decides about them later, as for any history that went away.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from git_cvfs.core.migrate.rewrite import (
    ATTRIBUTES_MAX_BYTES,
    REGULAR,
    HistoryReader,
    RewriteResult,
    cache_chunks,
    preflight,
    rewrite,
    scan,
)
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.setup import INDEX_ATTRS_LINE
from git_cvfs.errors import CvfsError, RefError
from git_cvfs.format.gitattributes import attributes_dir, drop_driver
from git_cvfs.format.inventory import SHARD_DIR
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.history import Commit, FastImport
from git_cvfs.remote.transfer import download_many


@dataclass
class ExportResult:
    rewrite: RewriteResult = field(default_factory=RewriteResult)
    objects: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {**self.rewrite.to_json(), "objects": self.objects, "bytes": self.bytes}


class _Refs(HistoryReader):
    """The refs of a commit that git smudges (filter=cvfs), decided the same way in both passes."""

    def decide(self, commit: Commit) -> Iterator[tuple[str, Ref]]:
        attrs = self.attributes(commit)
        for path, entry in commit.files.items():
            if entry.mode in REGULAR and self.sizes.get(entry.blob, MAX_REF_BYTES + 1) <= MAX_REF_BYTES:
                if attrs.filter_of(path) != "cvfs":
                    continue
                try:
                    ref = parse_ref(self.small(entry.blob))
                except RefError:
                    ref = None  # git-cvfs's smudge hands such content over as it is, so it stays
                if ref is not None:
                    yield path, ref


def migrate_export(ws: Workspace, revs: list[str]) -> ExportResult:
    ws.require_trusted()
    preflight(ws)
    refs = _Refs(ws)
    try:
        return _run(ws, revs, refs)
    finally:
        refs.close()


def _run(ws: Workspace, revs: list[str], refs: _Refs) -> ExportResult:
    needed: dict[str, tuple[str, Ref]] = {}

    def visit(commit: Commit) -> None:
        for path, ref in refs.decide(commit):
            needed.setdefault(ref.hex, (path, ref))

    _count, moved = scan(ws, revs, visit)
    result = ExportResult(objects=len(needed), bytes=sum(r.size for _, r in needed.values()))
    fetched = download_many(
        [ws.archive(n) for n in ws.archive_names],
        ws.cache,
        [r for _, r in needed.values()],
        concurrency=ws.settings.concurrency,
    )
    if fetched.failed:
        first = next(iter(fetched.failed))
        raise CvfsError(
            f"{len(fetched.failed)} object(s) could not be fetched, e.g. {needed[first][0]}: {fetched.failed[first].message}",
            hint="every object must be here before history is rewritten (nothing was); `git cvfs reconcile` shows where they are",
        )

    def change(commit: Commit, out: FastImport) -> None:
        for path, ref in refs.decide(commit):
            commit.files[path].blob = out.blob_stream(ref.hex, ref.size, cache_chunks(ws, ref))
        for path in [p for p in commit.files if p.startswith(SHARD_DIR + "/")]:
            del commit.files[path]
        for path, entry in list(commit.files.items()):
            big = refs.sizes.get(entry.blob, 0) > ATTRIBUTES_MAX_BYTES  # git ignores it: so does this
            if attributes_dir(path) is not None and entry.mode in REGULAR and not big:
                content = refs.small(entry.blob)
                kept = drop_driver(content, "cvfs", (INDEX_ATTRS_LINE,))
                if not kept.strip():
                    del commit.files[path]
                elif kept != content:
                    entry.blob = out.blob(kept)

    result.rewrite = rewrite(ws, revs, moved, change)
    if not ws.settings.cache_keep:
        for hex_digest in fetched.done:  # git holds those bytes now: the copies fetched for it go
            ws.cache.remove(hex_digest)
    return result
