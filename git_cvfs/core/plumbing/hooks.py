"""What each hook does: pre-commit, pre-push, post-checkout, post-merge, post-commit.

Each hook imports what it uses itself: a push with nothing new to upload needs only the
rev-list and scan of refs_in_history, and importing uploads, the inventory and argparse
took about half of its 130-160 ms (see commands/hook_gate.py)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

from git_cvfs import output
from git_cvfs.core.model.refscan import refs_in_history, scan_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import crash_point
from git_cvfs.errors import CvfsError
from git_cvfs.format.size import format_size
from git_cvfs.local.git import split_z

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ZERO = "0" * 40


def pre_commit(ws: Workspace) -> int:
    from git_cvfs.core.push import PushResult, archive_refs, raise_for_missing
    from git_cvfs.format.inventory import SHARD_DIR, Row
    from git_cvfs.local.index_store import update_inventory

    repo = ws.repo
    base = "HEAD" if repo.has_head() else EMPTY_TREE
    raw = repo.git("diff-index", "--cached", "-z", "--no-renames", base).split(b"\0")
    changed: list[tuple[str, str]] = []  # (path, new blob) added or modified
    deleted: list[str] = []
    for i in range(0, len(raw) - 1, 2):
        meta = raw[i].decode().lstrip(":").split()
        path = raw[i + 1].decode("utf-8", "surrogateescape")
        if path.startswith(SHARD_DIR + "/"):
            continue
        new_mode, new_blob, status = meta[1], meta[3], meta[4]
        if status == "D" or not new_mode.startswith("100"):
            deleted.append(path)  # gone, or now a symlink or a submodule: no object of ours there
        else:
            changed.append((path, new_blob))
    if not changed and not deleted:
        return 0
    settings = ws.settings
    filtered = repo.attr_values("filter", [p for p, _ in changed])
    scan = scan_blobs(repo, changed)
    problems: list[str] = []
    raw_refused = False
    for path, why in scan.malformed:
        problems.append(f"{path}: malformed git-cvfs ref ({why})")
    managed_refs = [(p, r) for p, r in scan.refs if filtered.get(p) == "cvfs"]
    for path, _ in scan.refs:
        if filtered.get(path) != "cvfs":  # `git mv` out of a tracked pattern: clones would get the JSON
            problems.append(
                f"{path}: a git-cvfs ref at a path git-cvfs does not manage (moved out of a tracked pattern?)"
                f" (track it: `git cvfs track {shlex.quote(_pattern_for(path))}`, then `git add {shlex.quote(path)}`;"
                " or move it back)"
            )
    for path, size in scan.plain:
        min_size = settings.min_size_for(path)
        if size < min_size:
            continue
        if filtered.get(path) == "cvfs":
            problems.append(
                f"{path}: {format_size(size)} of raw content bypassed the cvfs filter"
                " (is git-cvfs installed? run `git cvfs install --local`, then `git add` it again)"
            )
        elif settings.in_scope(path):
            problems.append(
                f"{path}: {format_size(size)} is at or above minSize ({format_size(min_size)}) but not managed"
                f" (run `git cvfs track {shlex.quote(path)}`, then `git add {shlex.quote(path)}`)"
            )
            raw_refused = True
    if problems:
        hint = "fix the files named above; git-cvfs never lets large raw files or broken refs into a commit"
        if raw_refused:
            hint += (
                " (to allow raw files of some size or place: `git config -f .cvfs/config scope.minSize 50MB`, "
                "or limit the check to some directories with scope.prefix; docs/configuration.md)"
            )
        raise CvfsError("commit refused:\n  " + "\n  ".join(problems), hint=hint)
    outcome = archive_refs(ws, managed_refs)
    paths = {r.hex: p for p, r in managed_refs}
    raise_for_missing(PushResult(outcome, paths), "commit refused")
    if outcome.unreachable:
        names = sorted(paths[h] for h in outcome.unreachable)
        # Which archives missed them: the pre-push hook fills only the primary; another
        # archive is filled by `git cvfs push --archive NAME`.
        failed = sorted({n for h in outcome.unreachable for n in ws.archive_names if n not in outcome.facts.get(h, {})})
        fills = [
            "`git push` uploads them to the primary (the pre-push hook)"
            if n == "primary"
            else f"`git cvfs push --archive {n}` uploads them to {n}"
            for n in failed
        ]
        output.warn(
            f"committing without archiving {len(names)} object(s) ({next(iter(outcome.unreachable.values()))}): "
            + ", ".join(names[:5]),
            hint="; ".join(fills) + " once it is reachable; `git cvfs reconcile --fix-index` then records them",
        )
    changes: dict[str, Row | None] = {p: None for p in deleted}
    for path, _ in scan.plain:
        if filtered.get(path) == "cvfs":  # a managed path now below minSize: no longer has a row
            changes[path] = None
    for path, ref in managed_refs:
        changes[path] = Row(path, ref.hex, ref.size, True, outcome.facts.get(ref.hex, {}))
    crash_point("pre-commit:before-rows")
    shards = update_inventory(repo, changes, from_index=True)
    if shards:
        repo.git("add", "--sparse", "--", *shards)  # --sparse: .cvfs/ may be outside a sparse checkout
    in_primary = {h: True for h, facts in outcome.facts.items() if "primary" in facts}
    from git_cvfs.core.model.lean_cache import drop_cache_copies  # here: pre-push need not pay for importing it

    drop_cache_copies(ws, managed_refs, in_primary)
    return 0


def _pattern_for(path: str) -> str:
    """The pattern a `git cvfs track` hint suggests for a path: its directory, or the file."""
    directory = path.rsplit("/", 1)[0] if "/" in path else ""
    return f"{directory}/**" if directory else path


def pre_push(ws: Workspace, remote: str, stdin_lines: Sequence[str]) -> int:
    """Every object the pushed commits reference must be in the primary archive."""
    tips, excludes = [], [f"--remotes={remote}"] if remote else []
    for line in stdin_lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] == ZERO:
            continue
        tips.append(parts[1])
        if parts[3] != ZERO:
            excludes.append(parts[3])
    if not tips:
        return 0
    # The remote's old tip may be a commit this clone never fetched (a force push): rev-list
    # passes over it, where one `git cat-file -e` per line used to ask first.
    found = refs_in_history(ws.repo, ["--ignore-missing", *tips, "--not", *excludes])
    if not found:
        return 0
    from git_cvfs.core.push import PushResult, archive_refs, raise_for_missing

    paths = {ref.hex: path for path, ref in found}
    outcome = archive_refs(ws, found, names=["primary"])
    result = PushResult(outcome, paths)
    raise_for_missing(result, "push refused")
    if outcome.unreachable:
        lines = [f"{paths.get(h, h)}: {m}" for h, m in sorted(outcome.unreachable.items())]
        raise CvfsError(
            "push refused: the primary archive does not hold these objects yet:\n  " + "\n  ".join(lines[:20]),
            hint="make the archive reachable and push again; the refs would point at bytes nobody can fetch",
        )
    return 0


def _pre_commit_framework_push() -> list[str]:
    """The pre-commit framework runs pre-push hooks listed in .pre-commit-config.yaml without
    git's stdin, one run per ref, and names it in the environment instead."""
    to_ref = os.environ.get("PRE_COMMIT_TO_REF")
    if not to_ref:
        return []
    local = os.environ.get("PRE_COMMIT_LOCAL_BRANCH", "HEAD")
    remote = os.environ.get("PRE_COMMIT_REMOTE_BRANCH", local)
    return [f"{local} {to_ref} {remote} {os.environ.get('PRE_COMMIT_FROM_REF') or ZERO}"]


def post_checkout(ws: Workspace) -> int:
    """Write the large files the filter left as refs. Never fails the checkout."""
    # Imported here, not at the top: pre-push and post-commit need none of it.
    from git_cvfs.core.ensure import EnsureResult, materialize, materialize_lock, take_pending
    from git_cvfs.core.model.managed import State, list_managed

    pending = take_pending(ws)
    if not pending:
        return _keep_within_budget(ws)
    try:
        with materialize_lock(ws):
            files = [f for f in list_managed(ws, [":(literal)" + p for p in pending]) if f.state is State.REF]
            result = EnsureResult()
            materialize(ws, files, result)
    except CvfsError as exc:
        output.warn(
            f"git-cvfs could not materialize {len(pending)} file(s): {exc.message}",
            hint="run `git cvfs ensure` to finish",
        )
        return 0
    if result.failed:
        first = next(iter(result.failed.values()))
        output.warn(
            f"git-cvfs left {len(result.failed)} file(s) as refs: {first}",
            hint="run `git cvfs ensure` to finish when the archive is reachable",
        )
    return _keep_within_budget(ws)


def _keep_within_budget(ws: Workspace) -> int:
    """worktree.budget, when the checkout wrote files (core/budget.py). Never fails the checkout."""
    from git_cvfs.core.budget import keep_within_budget, report, take_due

    if not take_due(ws):
        return 0
    try:
        result = keep_within_budget(ws)
    except CvfsError as exc:
        output.warn(f"git-cvfs could not keep the work tree within worktree.budget: {exc.message}", hint=exc.hint)
        return 0
    if result is not None:
        report(result)
    return 0


def post_commit(ws: Workspace) -> int:
    """After `git commit <paths>`, git's real index still holds the old shards: bring it in line
    with HEAD. During a rebase or `git am`, which commit without running pre-commit, make the
    commit just made carry the rows of the refs it holds."""
    from git_cvfs.format.inventory import SHARD_DIR

    repo = ws.repo
    if not repo.has_head():
        return 0
    from git_cvfs.core.model.claims import claim_all, claim_due_path

    if claim_due_path(ws).exists():  # objects were archived before this, the first commit, existed
        claim_all(ws)
    if replaying(repo.git_dir) and os.environ.get("GIT_CVFS_AMENDING") != "1":
        _amend_rows_of_head(ws, amend=os.path.isdir(os.path.join(repo.git_dir, "rebase-merge")))
    staged = split_z(repo.git("diff-index", "--cached", "-z", "--name-only", "HEAD", "--", SHARD_DIR))
    if not staged:
        return 0
    # Only shards whose work-tree bytes already match HEAD: never undo an edit the user staged.
    head_blobs = {}
    for record in split_z(repo.git("ls-tree", "-z", "HEAD", "--", *staged)):
        meta, _, path = record.partition("\t")
        head_blobs[path] = meta.split()[2]
    on_disk = [p for p in staged if p in head_blobs and (repo.root / p).is_file()]
    disk_blobs = repo.git("hash-object", "--no-filters", "--", *on_disk).decode().split() if on_disk else []
    in_line = [p for p, d in zip(on_disk, disk_blobs, strict=True) if head_blobs[p] == d]
    if in_line:
        repo.git("reset", "-q", "HEAD", "--", *in_line)
    return 0


def replaying(git_dir: os.PathLike[str] | str) -> bool:
    """A rebase or `git am` is under way: they make commits without running pre-commit."""
    return any(os.path.isdir(os.path.join(git_dir, d)) for d in ("rebase-merge", "rebase-apply"))


def _amend_rows_of_head(ws: Workspace, *, amend: bool) -> None:
    """HEAD was committed without pre-commit (a rebase, `git am`): where its rows do not name the
    objects its refs do (a conflict resolved by hand, a side chosen with -X), rewrite them and
    amend HEAD with them, before the next commit is built on it. `git am` (and `rebase
    --apply`, which runs it) keeps the index in memory and stops at an amended HEAD, so
    there the rows are only named, with the fix."""
    from git_cvfs.format.inventory import Row, shard_path
    from git_cvfs.local.archived_log import ArchivedLog
    from git_cvfs.local.index_store import read_rows_of_tree, update_inventory

    repo = ws.repo
    parent = "HEAD~1" if repo.git("rev-list", "--count", "-n", "2", "HEAD").strip() == b"2" else EMPTY_TREE
    raw = split_z(repo.git("diff-tree", "-r", "-z", "--no-commit-id", "--name-only", parent, "HEAD"))
    paths = [p for p in raw if not p.startswith(".cvfs/")]
    if not paths:
        return
    filtered = repo.attr_values("filter", paths)
    blobs = []
    for record in split_z(repo.git("ls-tree", "-z", "HEAD", "--", *paths)):
        meta, _, path = record.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob" and mode.startswith("100") and filtered.get(path) == "cvfs":
            blobs.append((path, blob))
    refs = dict(scan_blobs(repo, blobs).refs)
    rows = read_rows_of_tree(repo, "HEAD", {shard_path(p) for p in paths})
    known = {name: ArchivedLog(repo.cvfs_dir, ws.settings.archives[name]).known() for name in ws.archive_names}
    changes: dict[str, Row | None] = {}
    for path in paths:
        ref = refs.get(path)
        row = rows.get(path)
        if ref is None:
            if row is not None and row.git:
                changes[path] = None
        elif row is None or (row.hex, row.size) != (ref.hex, ref.size):
            facts = {
                n: {"etag": k[ref.hex], "key": f"objects/{ref.hex[:2]}/{ref.hex[2:4]}/{ref.hex}"}
                for n, k in known.items()
                if ref.hex in k
            }
            changes[path] = Row(path, ref.hex, ref.size, True, facts)
    if not changes:
        return
    if not amend:
        output.warn(
            f"the commit just applied records inventory rows that do not match its refs: {', '.join(sorted(changes)[:5])}",
            hint="when `git am` has finished: `git cvfs reconcile --fix-index`, then commit .cvfs/index",
        )
        return
    shards = update_inventory(repo, changes, from_index=True)
    if shards:
        repo.git("add", "--sparse", "--", *shards)
        repo.git("commit", "-q", "--amend", "--no-edit", "--no-verify", env={**os.environ, "GIT_CVFS_AMENDING": "1"})
        output.info(f"git-cvfs: rewrote the inventory rows of {len(changes)} file(s) in the commit just replayed")


def run_hook(ws: Workspace, name: str, args: Sequence[str]) -> int:
    if name in ("pre-commit", "pre-merge-commit"):  # git merge runs the second, not the first
        return pre_commit(ws)
    if name == "pre-push":
        lines = sys.stdin.read().splitlines()
        remote = args[0] if args else os.environ.get("PRE_COMMIT_REMOTE_NAME", "")
        return pre_push(ws, remote, lines or _pre_commit_framework_push())
    if name in ("post-checkout", "post-merge"):
        return post_checkout(ws)
    if name in ("post-commit", "post-applypatch"):  # `git am` runs the second, not the first
        return post_commit(ws)
    return 0
