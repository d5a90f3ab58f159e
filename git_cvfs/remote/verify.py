"""Is an archive's copy of an object really that object? Asked of the stored bytes, not of records.

An archive can lie: an object under the right key, of the right size, may hold other bytes
(overwritten, bit-rotted, or written by a tool that never checked). Nothing is recorded as
archived, and nothing is freed or called safe, until the copy is shown to be the object by
one of, cheapest first:

1. a SHA-256 the archive computed over the stored bytes (S3 checks the one sent with every
   single PUT and keeps it): compared with the oid, no bytes read;
2. for a directory archive, the SHA-256 of its file (reading it is the check);
3. the archive's etag, unchanged since this machine uploaded and verified those bytes, where
   the archive itself changes the etag on every write (S3, Azure);
4. an MD5 the archive computed (S3's single-PUT etag, Azure's Content-MD5 of a single Put
   Blob), or S3's per-part composite, compared with the same digest of a local copy known to
   be the object;
5. reading the archive's copy back and hashing it (only where the caller allows it: it costs
   a download).
"""

from __future__ import annotations

import base64
import hashlib
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from git_cvfs.errors import ArchiveError
from git_cvfs.format.ref import Ref
from git_cvfs.remote.archive import PART_SIZE, Archive, ObjectInfo, object_key

CHUNK = 1 << 20


class Verdict(Enum):
    VERIFIED = "verified"  # the stored bytes are the object
    MISSING = "missing"  # no object under the key
    DIFFERENT = "different"  # the stored bytes are not the object
    UNVERIFIED = "unverified"  # present, but nothing at hand can show what it holds


class Verification(NamedTuple):
    verdict: Verdict
    info: ObjectInfo | None
    how: str  # what showed it, or why nothing could

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.VERIFIED


def local_digests(path: Path, kinds: set[str]) -> dict[str, str]:
    """The digests of a local file, in the forms an archive keeps them, in one read."""
    md5 = hashlib.md5(usedforsecurity=False) if "md5" in kinds else None
    parts = {"sha256-parts", "md5-parts"} & kinds
    part_sha: list[bytes] = []
    part_md5: list[bytes] = []
    with open(path, "rb", buffering=0) as f:
        while True:
            part_a = hashlib.sha256() if "sha256-parts" in parts else None
            part_b = hashlib.md5(usedforsecurity=False) if "md5-parts" in parts else None
            got = 0
            while got < PART_SIZE and (chunk := f.read(min(CHUNK, PART_SIZE - got))):
                got += len(chunk)
                for h in (md5, part_a, part_b):
                    if h is not None:
                        h.update(chunk)
            if not got:
                break
            if part_a is not None:
                part_sha.append(part_a.digest())
            if part_b is not None:
                part_md5.append(part_b.digest())
    out = {}
    if md5 is not None:
        out["md5"] = md5.hexdigest()
    if "sha256-parts" in parts:
        composite = base64.b64encode(hashlib.sha256(b"".join(part_sha)).digest()).decode()
        out["sha256-parts"] = f"{composite}-{len(part_sha)}"
    if "md5-parts" in parts:
        out["md5-parts"] = f"{hashlib.md5(b''.join(part_md5), usedforsecurity=False).hexdigest()}-{len(part_md5)}"
    return out


_WHOLE = {"sha256": "the SHA-256 the archive keeps", "md5": "the MD5 the archive keeps"}


def verify_copy(
    archive: Archive,
    ref: Ref,
    *,
    local: Path | None = None,
    verified_etag: str | None = None,
    read_into: Path | None = None,
    read_always: bool = False,
) -> Verification:
    """Whether `archive` holds `ref`'s bytes. `local`: a file known to be the object (the cache's
    copy, or a work-tree file just hashed), for digests the archive keeps in a form other than
    the oid. `verified_etag`: the etag this machine recorded after verifying an upload.
    `read_into`: a directory for a temporary file, allowing a download and hash as last resort;
    with `read_always`, the only check (an audit for bit rot)."""
    key = object_key(ref.hex)
    stored = archive.stored(key)
    if stored is None:
        return Verification(Verdict.MISSING, None, "no object under its key")
    info = stored.info
    if info.size != ref.size:
        return Verification(Verdict.DIFFERENT, info, f"it holds {info.size} bytes, not {ref.size}")
    if read_always and read_into is not None:  # an audit for bit rot: the bytes themselves, not digests
        return _read_back(archive, ref, key, info, read_into)
    if "sha256" in stored.digests:
        if stored.digests["sha256"] == ref.hex:
            return Verification(Verdict.VERIFIED, info, _WHOLE["sha256"])
        return Verification(Verdict.DIFFERENT, info, "its SHA-256 is another object's")
    if verified_etag is not None and archive.capabilities.etag_is_version and info.etag == verified_etag:
        return Verification(Verdict.VERIFIED, info, "etag unchanged since a verified upload")
    if local is not None and stored.digests:
        ours = local_digests(local, set(stored.digests))
        if "md5" in stored.digests:
            if stored.digests["md5"] == ours["md5"]:
                return Verification(Verdict.VERIFIED, info, _WHOLE["md5"])
            return Verification(Verdict.DIFFERENT, info, "its MD5 is another object's")
        for kind in ("sha256-parts", "md5-parts"):
            if kind in stored.digests and stored.digests[kind] == ours[kind]:
                return Verification(Verdict.VERIFIED, info, f"the per-part {kind.split('-')[0].upper()} it keeps")
        # A composite that differs may only mean other part sizes: not proof either way.
    if read_into is not None:
        return _read_back(archive, ref, key, info, read_into)
    return Verification(Verdict.UNVERIFIED, info, "the archive keeps no checksum that shows its bytes")


def _read_back(archive: Archive, ref: Ref, key: str, info: ObjectInfo, tmp_dir: Path) -> Verification:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"verify-{ref.hex[:16]}-{id(info)}"
    try:
        with open(tmp, "w+b") as out:
            archive.download_to(key, out, ref.size)
            out.seek(0)
            digest = hashlib.sha256()
            size = 0
            while chunk := out.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except ArchiveError as exc:
        return Verification(Verdict.UNVERIFIED, info, f"could not read it back: {exc.message}")
    finally:
        tmp.unlink(missing_ok=True)
    if (digest.hexdigest(), size) == (ref.hex, ref.size):
        return Verification(Verdict.VERIFIED, info, "read back and hashed")
    return Verification(Verdict.DIFFERENT, info, "read back, its bytes are another object's")
