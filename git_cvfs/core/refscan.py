"""Find the refs among many git blobs: sizes in one batch-check, then only the small ones read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from git_cvfs.errors import RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.local.git import CatFile, Repo


@dataclass
class BlobScan:
    refs: list[tuple[str, Ref]] = field(default_factory=list)  # (path, ref)
    malformed: list[tuple[str, str]] = field(default_factory=list)  # (path, problem)
    plain: list[tuple[str, int]] = field(default_factory=list)  # (path, size) of ordinary content


def blob_sizes(repo: Repo, blobs: Sequence[str]) -> dict[str, int]:
    if not blobs:
        return {}
    out = repo.git(
        "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)", input="\n".join(blobs).encode() + b"\n"
    )
    sizes = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return sizes


def scan_blobs(repo: Repo, items: Sequence[tuple[str, str]]) -> BlobScan:
    """items: (path, blob id)."""
    scan = BlobScan()
    sizes = blob_sizes(repo, list({b for _, b in items}))
    small = [(p, b) for p, b in items if sizes.get(b, MAX_REF_BYTES + 1) <= MAX_REF_BYTES]
    contents: dict[str, bytes] = {}
    if small:
        with CatFile(repo) as cat:
            for _, blob in small:
                if blob not in contents:
                    contents[blob] = cat.read(blob)[1] or b""
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
