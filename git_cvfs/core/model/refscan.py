"""Find the refs among many git blobs: sizes in one batch-check, then only the small ones read."""

from __future__ import annotations

import os
from collections.abc import Sequence

from git_cvfs.errors import CvfsError, RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.git import Repo, run_git, split_z
from git_cvfs.local.ref_blobs import known_ref_blobs, remember_ref_blobs


class BlobScan:
    """What scan_blobs found. A plain class, not a dataclass: the pre-push hook scans, and
    importing dataclasses (with inspect) would cost it about 13 ms."""

    def __init__(self) -> None:
        self.refs: list[tuple[str, Ref]] = []  # (path, ref)
        self.malformed: list[tuple[str, str]] = []  # (path, problem)
        self.plain: list[tuple[str, int]] = []  # (path, size) of ordinary content


def blob_sizes(repo: Repo, blobs: Sequence[str]) -> dict[str, int]:
    if not blobs:
        return {}
    out = repo.git(
        "cat-file",
        "--buffer",
        "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        input="\n".join(blobs).encode() + b"\n",
    )
    sizes = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return sizes


def small_blobs(repo: Repo, blobs: Sequence[str]) -> tuple[dict[str, int], dict[str, bytes]]:
    """Sizes of all the blobs, and the contents of those small enough to be a ref.

    Two git processes whatever the count, each given every name at once: asking one
    `cat-file --batch` blob by blob costs a round trip each (0.2 ms; half of a
    pre-commit over 5,000 files). Memory is at most MAX_REF_BYTES per blob.
    """
    unique = list(dict.fromkeys(blobs))
    known = known_ref_blobs(repo.cvfs_dir, set(unique)) if unique else {}
    rest = [b for b in unique if b not in known]
    sizes = blob_sizes(repo, rest)
    small = [b for b in rest if sizes.get(b, MAX_REF_BYTES + 1) <= MAX_REF_BYTES]
    contents = read_blobs(repo, small)
    remember_ref_blobs(repo.cvfs_dir, contents, live=known)
    sizes.update((blob, len(data)) for blob, data in known.items())
    contents.update(known)
    return sizes, contents


def read_blobs(repo: Repo, blobs: Sequence[str]) -> dict[str, bytes]:
    """The contents of these blobs (keep them small: all are held at once); missing ones left out."""
    if not blobs:
        return {}
    out = repo.git("cat-file", "--batch", "--buffer", input="\n".join(blobs).encode() + b"\n")
    contents: dict[str, bytes] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<name> missing" (or ambiguous): no body follows
            continue
        size = int(header[2])
        contents[header[0].decode()] = out[pos : pos + size]
        pos += size + 1
    return contents


def head_and_index_blobs(repo: Repo) -> list[tuple[str, str]]:
    """(path, blob id) of every file at HEAD and in git's index, each pair once: what a commit
    already holds and what the next one will."""
    items: list[tuple[str, str]] = []
    if repo.has_head():
        for record in split_z(repo.git("ls-tree", "-r", "-z", "--full-tree", "HEAD")):
            meta, _, path = record.partition("\t")
            _, kind, blob = meta.split()
            if kind == "blob":
                items.append((path, blob))
    for record in split_z(repo.git("ls-files", "-s", "-z")):
        meta, _, path = record.partition("\t")
        items.append((path, meta.split()[1]))
    return list(dict.fromkeys(items))


def scan_blobs(repo: Repo, items: Sequence[tuple[str, str]]) -> BlobScan:
    """items: (path, blob id)."""
    scan = BlobScan()
    sizes, contents = small_blobs(repo, [b for _, b in items])
    for path, blob in items:
        if blob not in sizes:
            continue
        data = contents.get(blob)
        if data is None:
            scan.plain.append((path, sizes[blob]))
            continue
        try:
            ref = parse_ref(data)
        except RefError as exc:
            scan.malformed.append((path, exc.message))
            continue
        if ref is None:
            scan.plain.append((path, sizes[blob]))
        else:
            scan.refs.append((path, ref))
    return scan


def refs_in_history(repo: Repo, revs: Sequence[str]) -> list[tuple[str, Ref]]:
    """Refs in every blob reachable from revs (e.g. ["--all"], or new commits "--not --remotes").

    The commits as they are stored, not as `git replace` shows them here: a replacement (a
    `git replace --graft` that stitches or cuts history) hides the commits behind it, yet a
    push or a clone elsewhere carries those commits as they are. With "--all" the replacement
    commits are walked as well (refs/replace/* are refs)."""
    items = []
    walk = ["--no-replace-objects", "rev-list", "--objects"]
    out = repo.git(*walk, "--missing=print", *revs)
    if missing := _missing(out):
        # A partial clone (`--filter=blob:none`): the blobs of history are not here, and git
        # would fetch them one request each as they are asked for (200 took 28 s against a
        # local remote). One fetch takes them all; then history is walked again, and anything
        # still missing is fetched by git as before, or fails as before.
        fetch_missing(repo, missing)
        out = repo.git(*walk, *revs)
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        sha, _, path = line.partition(" ")
        if path:
            items.append((path, sha))
    return scan_blobs(repo, items).refs


def is_partial_clone(repo: Repo) -> bool:
    """Objects came from a promisor remote (`git clone --filter=...`): git keeps a .promisor
    file beside each pack it fetched so. A look at one directory, no git process."""
    try:
        return any(name.endswith(".promisor") for name in os.listdir(repo.common_dir / "objects" / "pack"))
    except OSError:
        return False


def prefetch(repo: Repo, revs: Sequence[str]) -> None:
    """In a partial clone, fetch in one request what of revs' objects is not here (say
    ["--no-walk", commit]: one commit's tree), before git is asked for their sizes or bytes
    and would fetch them one request each. Nothing to do, and no process, elsewhere."""
    if not is_partial_clone(repo):
        return
    out = repo.git("--no-replace-objects", "rev-list", "--objects", "--missing=print", *revs)
    if missing := _missing(out):
        fetch_missing(repo, missing)


def _missing(rev_list: bytes) -> list[str]:
    """The objects `rev-list --missing=print` found missing (its "?<oid>" lines)."""
    return [line[1:] for line in rev_list.decode("ascii", "replace").splitlines() if line.startswith("?")]


def fetch_missing(repo: Repo, objects: Sequence[str]) -> None:
    """Fetch these objects from the promisor remotes in one request each, as git's own lazy
    fetch asks for them (noop negotiation, no tags, no FETCH_HEAD). Best effort: whatever this
    leaves missing, git fetches on demand."""
    out = run_git(["config", "--get-regexp", r"^remote\..*\.promisor$"], cwd=repo.root, check=False).stdout
    remotes = [
        key[len("remote.") : -len(".promisor")]
        for key, _, value in (line.partition(" ") for line in out.decode("utf-8", "surrogateescape").splitlines())
        if value.strip().lower() in ("true", "yes", "on", "1")
    ]
    wanted = "\n".join(objects).encode() + b"\n"
    for remote in remotes:
        run_git(
            [
                "-c",
                "fetch.negotiationAlgorithm=noop",
                "fetch",
                remote,
                "--no-tags",
                "--no-write-fetch-head",
                "--recurse-submodules=no",
                "--filter=blob:none",
                "--stdin",
            ],
            cwd=repo.root,
            input=wanted,
            check=False,
        )


def require_whole_history(repo: Repo, what: str, risk: str) -> None:
    """Refuse a command that must see every commit (to decide what none needs, or to rewrite
    them) when git here cannot walk them all: in a shallow clone the commits below its
    boundary are not here (a CI runner's `clone --depth 1`), and a grafts file gives commits
    other parents than they have. risk: what would go wrong, said in the error."""
    out = repo.git("rev-parse", "--is-shallow-repository", "--path-format=absolute", "--git-path", "info/grafts")
    shallow, _, grafts = out.decode("utf-8", "surrogateescape").partition("\n")
    if shallow.strip() == "true":
        raise CvfsError(
            f"this clone is shallow: {what} cannot see the commits it leaves out ({risk})",
            hint="run it in a full clone, or make this one whole first: git fetch --unshallow",
        )
    grafts = grafts.strip()
    if grafts and os.path.lexists(grafts):
        raise CvfsError(
            f"{grafts} gives commits other parents than they have: {what} cannot see the commits it hides ({risk})",
            hint="run it in a clone without a grafts file (`git replace --convert-graft-file` turns it into "
            "replace refs, which git-cvfs looks behind)",
        )
