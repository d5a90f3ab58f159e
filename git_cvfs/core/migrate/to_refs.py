"""`migrate import`: history whose large files are plain git blobs, or Git LFS pointers, is
rewritten so they are refs, their bytes archived and verified before a single ref moves.

Two passes over the same fast-export stream. The first decides, commit by commit, which
(path, blob) pairs become refs and gets every object they need into the archives: a plain
blob streamed out of git and hashed on its way into the cache, an LFS object copied (and
hashed) from git-lfs's store. Only when the archives hold all of them does the second pass
write the commits: refs in place of the blobs, .gitattributes saying filter=cvfs, and the
inventory rows of each commit with the facts the uploads observed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from git_cvfs import output
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
from git_cvfs.core.model.lean_cache import drop_cache_copies
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.push import archive_refs, refs_in_tree_and_index
from git_cvfs.core.setup import ATTRS, INDEX_ATTRS_LINE
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.gitattributes import (
    ATTRIBUTES_FILE,
    attributes_dir,
    escape_glob,
    quote_c,
    swap_attrs,
)
from git_cvfs.format.glob import match_any
from git_cvfs.format.inventory import SHARD_DIR, Row, encode_shard, parse_shard, shard_path
from git_cvfs.format.lfs_pointer import MAX_POINTER_BYTES, parse_lfs_pointer
from git_cvfs.format.ref import Ref
from git_cvfs.format.size import format_size
from git_cvfs.local.cache import CHUNK
from git_cvfs.local.config import CONFIG_FILE
from git_cvfs.local.git import run_git
from git_cvfs.local.history import Commit, Entry, FastImport

MIN_POINTER_BYTES = 100  # the shortest valid pointer is longer: smaller blobs are not read
UPLOAD_BATCH_BYTES = 1 << 30
# what Git LFS wrote becomes what `git cvfs track` writes (merge=binary: see core/setup.py)
FROM_LFS = {
    "filter=lfs": "filter=cvfs",
    "diff=lfs": "diff=cvfs",
    "merge=lfs": "merge=binary",
}  # archived, then dropped from the cache, every this many bytes


@dataclass
class ImportResult:
    rewrite: RewriteResult
    objects: int = 0
    bytes: int = 0
    uploaded: int = 0
    inlined: int = 0  # LFS files below minSize that became plain git blobs again
    archives: list[str] = field(default_factory=list)
    min_size_set: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            **self.rewrite.to_json(),
            "objects": self.objects,
            "bytes": self.bytes,
            "uploaded": self.uploaded,
            "inlined": self.inlined,
            "archives": self.archives,
            "min_size_set": self.min_size_set,
        }


class _Plan(HistoryReader):
    """Which paths of a commit become refs, decided the same way in both passes."""

    def __init__(self, ws: Workspace, *, include: list[str], above: int | None, from_lfs: bool) -> None:
        super().__init__(ws)
        self.ws = ws
        self.include = include
        self.above = above
        self.from_lfs = from_lfs

    def threshold(self, path: str) -> int:
        return self.above if self.above is not None else self.ws.settings.min_size_for(path)

    def decide(self, commit: Commit) -> Iterator[tuple[str, str, Ref | None]]:
        """(path, blob, pointer) for each file that becomes a ref or, from LFS, a plain blob:
        pointer is the LFS object the blob names, None for a plain blob to hash."""
        attrs = self.attributes(commit) if self.from_lfs else None
        for path, entry in commit.files.items():
            if entry.mode not in REGULAR or path.startswith(SHARD_DIR + "/"):
                continue
            size = self.sizes.get(entry.blob, -1)
            if attrs is not None:
                if MIN_POINTER_BYTES <= size <= MAX_POINTER_BYTES and attrs.filter_of(path) == "lfs":
                    pointer = parse_lfs_pointer(self.small(entry.blob))
                    if pointer is not None:
                        yield path, entry.blob, pointer
            elif size >= self.threshold(path) and (not self.include or match_any(self.include, path)):
                yield path, entry.blob, None


def migrate_import(
    ws: Workspace,
    revs: list[str],
    *,
    include: list[str],
    above: int | None,
    from_lfs: bool,
) -> ImportResult:
    if from_lfs and include:
        raise UsageError("--include does not go with --from-lfs", hint="--from-lfs converts every file Git LFS stores")
    if above is not None and ws.settings.min_size_by_prefix:
        raise UsageError(
            '--above cannot be used while .cvfs/config sets scope "<prefix>".minSize',
            hint="leave out --above: each path's scope.minSize is then its threshold",
        )
    ws.require_trusted()
    preflight(ws)
    plan = _Plan(ws, include=include, above=above, from_lfs=from_lfs)
    try:
        return _run(ws, revs, plan)
    finally:
        plan.close()


def _run(ws: Workspace, revs: list[str], plan: _Plan) -> ImportResult:
    to_hash: dict[str, str] = {}  # plain blob -> a path it is at
    pointers: dict[str, tuple[Ref, str, bool]] = {}  # LFS object -> (ref, a path, becomes a ref somewhere)
    converted_paths: set[str] = set()

    def visit(commit: Commit) -> None:
        for path, blob, pointer in plan.decide(commit):
            if pointer is None:
                to_hash.setdefault(blob, path)
                converted_paths.add(path)
            else:
                large = pointer.size >= plan.threshold(path)
                _, first, was_large = pointers.get(pointer.hex, (pointer, path, False))
                pointers[pointer.hex] = (pointer, first, was_large or large)

    _count, refs = scan(ws, revs, visit)
    if not to_hash and not pointers:
        raise CvfsError(
            f"nothing to import in {' '.join(revs)}: no file "
            + ("Git LFS stores" if plan.from_lfs else f"at or above {format_size(plan.above or ws.settings.min_size)}"),
            hint="`git cvfs migrate info --everything` shows what history holds",
        )
    head_blobs = _head_blobs(ws)
    refs_of: dict[str, Ref] = {}  # plain blob -> its ref
    facts: dict[str, dict[str, dict[str, str]]] = {}
    result = ImportResult(RewriteResult(), archives=list(ws.archive_names))
    if plan.from_lfs:
        _take_lfs_objects(ws, pointers)
        archive = [(path, ref) for ref, path, large in pointers.values() if large]
        result.inlined = sum(1 for _, _, large in pointers.values() if not large)
        _archive(ws, archive, facts, keep={r.hex for r in pointers_at_head(pointers, head_blobs, plan)}, result=result)
    else:
        _hash_and_archive(ws, plan, to_hash, head_blobs, refs_of, facts, result)
    attr_lines = _attribute_lines(plan, converted_paths)
    config = _config_bytes(ws)
    shards: dict[str, dict[str, Row]] = {}

    def change(commit: Commit, out: FastImport) -> None:
        rows: dict[str, Row] = {}
        for path, blob, pointer in plan.decide(commit):
            if pointer is None:
                ref = refs_of[blob]
            elif pointer.size < plan.threshold(path):
                commit.files[path].blob = out.blob_stream(pointer.hex, pointer.size, cache_chunks(ws, pointer))
                continue
            else:
                ref = pointer
            commit.files[path].blob = out.blob(ref.encode())
            rows[path] = Row(path, ref.hex, ref.size, True, facts.get(ref.hex, {}))
        for path, entry in list(commit.files.items()):
            if attributes_dir(path) is None or entry.mode not in REGULAR:
                continue
            if plan.sizes.get(entry.blob, 0) > ATTRIBUTES_MAX_BYTES:  # git ignores it: so does this
                if rows and path == ATTRIBUTES_FILE:
                    raise CvfsError(
                        f"{ATTRIBUTES_FILE} in commit {commit.original[:12]} is larger than git reads (100 MiB)",
                        hint="nothing was rewritten; make that file smaller in history first, or import with --include",
                    )
                continue
            content = plan.small(entry.blob)
            edited = swap_attrs(content, FROM_LFS) if plan.from_lfs else content
            if rows and path == ATTRIBUTES_FILE:
                edited = _with_lines(edited, attr_lines)
            if edited != content:
                entry.blob = out.blob(edited)
        if rows:
            _write_rows(commit, out, rows, plan, shards)
            if ATTRIBUTES_FILE not in commit.files:
                commit.files[ATTRIBUTES_FILE] = Entry("100644", out.blob(_with_lines(b"", attr_lines)))
            if CONFIG_FILE not in commit.files and config is not None:
                # an older commit checked out later must name the archive its refs are in
                commit.files[CONFIG_FILE] = Entry("100644", out.blob(config))

    result.rewrite = rewrite(ws, revs, refs, change)
    if plan.above is not None and plan.above != ws.settings.min_size:
        # the filter must draw the line where the import did, or the next `git add` of a
        # file between the two sizes would store it the other way (written once the rewrite
        # is done: a refused one leaves the work tree as it was)
        config_file = str(ws.repo.root / CONFIG_FILE)
        run_git(["config", "-f", config_file, "scope.minSize", str(plan.above)], cwd=ws.repo.root)
        result.min_size_set = plan.above
    _settle_cache(ws, pointers, facts)
    return result


def pointers_at_head(pointers: dict[str, tuple[Ref, str, bool]], head_blobs: set[str], plan: _Plan) -> list[Ref]:
    """The LFS objects the checked-out commit uses: kept in the cache until the work tree is moved."""
    wanted = []
    for blob in head_blobs:
        size = plan.sizes.get(blob, -1)
        if MIN_POINTER_BYTES <= size <= MAX_POINTER_BYTES:
            pointer = parse_lfs_pointer(plan.small(blob))
            if pointer is not None and pointer.hex in pointers:
                wanted.append(pointer)
    return wanted


def _head_blobs(ws: Workspace) -> set[str]:
    out = run_git(["ls-tree", "-r", "--full-tree", "HEAD"], cwd=ws.repo.root, check=False).stdout
    return {line.split()[2].decode() for line in out.splitlines() if line.split()[1:2] == [b"blob"]}


def _lfs_dir(ws: Workspace) -> Path:
    configured = run_git(["config", "lfs.storage"], cwd=ws.repo.root, check=False).stdout.decode().strip()
    if configured:
        base = Path(configured)
        return (base if base.is_absolute() else ws.repo.common_dir / base) / "objects"
    return ws.repo.common_dir / "lfs" / "objects"


def _take_lfs_objects(ws: Workspace, pointers: dict[str, tuple[Ref, str, bool]]) -> None:
    """Every LFS object into the cache, hashed on the way: git-lfs's store is trusted no more
    than an archive. All missing ones are named before anything is rewritten."""
    lfs = _lfs_dir(ws)
    missing = []
    progress = output.Progress("Reading Git LFS objects", len(pointers), sum(r.size for r, _, _ in pointers.values()))
    for ref, path, _ in pointers.values():
        if not ws.cache.has(ref.hex, ref.size):
            source = lfs / ref.hex[0:2] / ref.hex[2:4] / ref.hex
            try:
                with open(source, "rb") as f:
                    ws.cache.put_stream(iter(lambda: f.read(CHUNK), b""), expect_hex=ref.hex)
            except FileNotFoundError:
                missing.append(path)
            except CvfsError as exc:
                raise CvfsError(
                    f"{path}: the Git LFS object {ref.hex[:12]} holds other bytes ({exc.message})",
                    hint="fetch it again (`git lfs fetch --all`), or remove it from .git/lfs/objects first",
                ) from None
        progress.advance(1, ref.size)
    progress.finish()
    if missing:
        raise CvfsError(
            f"{len(missing)} Git LFS object(s) are not on this machine, e.g. {', '.join(sorted(missing)[:3])}",
            hint="`git lfs fetch --all` brings every one, then run this again (nothing was rewritten)",
        )


def _hash_and_archive(
    ws: Workspace,
    plan: _Plan,
    to_hash: dict[str, str],
    head_blobs: set[str],
    refs_of: dict[str, Ref],
    facts: dict[str, dict[str, dict[str, str]]],
    result: ImportResult,
) -> None:
    """Stream each blob from git into the cache (hashing it), archiving every UPLOAD_BATCH_BYTES:
    the cache never holds more than a batch of history besides what is checked out."""
    total = sum(plan.sizes[b] for b in to_hash)
    progress = output.Progress("Hashing blobs", len(to_hash), total)
    batch: list[tuple[str, Ref]] = []
    batch_bytes = 0
    keep: set[str] = set()
    for blob, path in sorted(to_hash.items(), key=lambda item: item[1]):
        hex_digest, size = ws.cache.put_stream(plan.blobs.stream(blob))
        ref = Ref(hex_digest, size)
        refs_of[blob] = ref
        if blob in head_blobs:
            keep.add(hex_digest)
        batch.append((path, ref))
        batch_bytes += size
        progress.advance(1, size)
        if batch_bytes >= UPLOAD_BATCH_BYTES:
            _archive(ws, batch, facts, keep=keep, result=result)
            batch, batch_bytes = [], 0
    progress.finish()
    _archive(ws, batch, facts, keep=keep, result=result)


def _archive(
    ws: Workspace,
    found: list[tuple[str, Ref]],
    facts: dict[str, dict[str, dict[str, str]]],
    *,
    keep: set[str],
    result: ImportResult,
) -> None:
    """Upload and verify in every archive; any failure stops the import before history changes.
    Then the cache lets go of history it holds only for the upload (kept: what is checked out)."""
    if not found:
        return
    outcome = archive_refs(ws, found, trust_log=False)
    if not outcome.ok:
        problems = {**outcome.missing, **outcome.unreachable}
        paths = {ref.hex: path for path, ref in found}
        first = next(iter(problems))
        raise CvfsError(
            f"{len(problems)} object(s) could not be archived, e.g. {paths.get(first, first)}: {problems[first]}",
            hint="fix the archive (`git cvfs doctor`), then run this again: nothing was rewritten",
        )
    for hex_digest, where in outcome.facts.items():
        facts.setdefault(hex_digest, {}).update(where)
    unique = {ref.hex: ref for _, ref in found}
    result.objects += len(unique)
    result.bytes += sum(r.size for r in unique.values())
    result.uploaded += outcome.uploaded
    if not ws.settings.cache_keep:
        for hex_digest in unique:
            if hex_digest not in keep and "primary" in outcome.facts.get(hex_digest, {}):
                ws.cache.remove(hex_digest)


def _config_bytes(ws: Workspace) -> bytes | None:
    """.cvfs/config as committed at HEAD, or as it is on disk when it is not committed yet."""
    committed = run_git(["cat-file", "blob", f"HEAD:{CONFIG_FILE}"], cwd=ws.repo.root, check=False)
    if committed.returncode == 0:
        return committed.stdout
    path = ws.repo.root / CONFIG_FILE
    return path.read_bytes() if path.is_file() else None


def _attribute_lines(plan: _Plan, converted_paths: set[str]) -> list[str]:
    if plan.from_lfs:
        return [INDEX_ATTRS_LINE]
    if plan.include:
        patterns = list(plan.include)
    else:  # as Git LFS does for --above: each file by its own name, so nothing else changes filter
        patterns = [escape_glob(p) for p in sorted(converted_paths)]
    return [f"{quote_c(p, spaces=True)} {ATTRS}" for p in patterns] + [INDEX_ATTRS_LINE]


def _with_lines(content: bytes, lines: list[str]) -> bytes:
    """content with each of lines appended that it does not have yet."""
    present = {line.strip() for line in content.decode("utf-8", "surrogateescape").splitlines()}
    added = [line for line in lines if line not in present]
    if not added:
        return content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    return content + ("\n".join(added) + "\n").encode("utf-8", "surrogateescape")


def _write_rows(
    commit: Commit, out: FastImport, rows: dict[str, Row], plan: _Plan, shards: dict[str, dict[str, Row]]
) -> None:
    """This commit's shards: the rows it had (a repository already partly managed) with the
    converted paths' rows put in."""
    by_shard: dict[str, dict[str, Row]] = {}
    for path, entry in commit.files.items():
        if path.startswith(SHARD_DIR + "/") and path.endswith(".jsonl") and entry.mode in REGULAR:
            if entry.blob not in shards:
                if len(shards) >= 64:  # consecutive commits share shards: the last few are enough
                    del shards[next(iter(shards))]
                shards[entry.blob] = parse_shard(plan.small(entry.blob), where=path)
            by_shard[path] = dict(shards[entry.blob])
    for path, row in rows.items():
        by_shard.setdefault(shard_path(path), {})[path] = row
    for name, shard_rows in by_shard.items():
        commit.files[name] = Entry("100644", out.blob(encode_shard(shard_rows.values())))


def _settle_cache(
    ws: Workspace, pointers: dict[str, tuple[Ref, str, bool]], facts: dict[str, dict[str, dict[str, str]]]
) -> None:
    """LFS objects that became plain git blobs are git's now: their cache copies go. Objects
    the moved work tree holds, and the primary too, go as the lean cache always lets them."""
    for ref, _, large in pointers.values():
        if not large:
            ws.cache.remove(ref.hex)
    drop_cache_copies(ws, refs_in_tree_and_index(ws), {h: True for h, where in facts.items() if "primary" in where})
