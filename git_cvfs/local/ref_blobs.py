"""Which git blobs are refs, remembered on this machine: `status`, the hooks and `ensure` read the
ref of every managed file in the index, and asking git costs two processes and a pipe of every
blob (170 ms for 2,000 files). A blob's id is the hash of its bytes, so each remembered entry is
checked by hashing the ref it names again: a damaged or planted line is simply not believed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from git_cvfs.errors import RefError
from git_cvfs.format.ref import Ref, parse_ref
from git_cvfs.local import writeback

FILE = "ref-blobs"
MAX_BYTES = 24 << 20  # about 220,000 refs; past this it is written afresh with the working set


def _blob_id(data: bytes, length: int) -> str:
    header = b"blob %d\0" % len(data)
    return (hashlib.sha1 if length == 40 else hashlib.sha256)(header + data).hexdigest()


def known_ref_blobs(cvfs_dir: Path, wanted: set[str]) -> dict[str, bytes]:
    """Ref bytes of the wanted blobs this machine has seen, each one checked against its id."""
    try:
        with open(cvfs_dir / FILE, "rb") as f:
            text = f.read()
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    wanted_ids = {w.encode() for w in wanted}
    for line in text.split(b"\n"):
        parts = line.split(b" ")
        if len(parts) != 3 or parts[0] not in wanted_ids:
            continue
        blob = parts[0].decode()
        if blob in found:
            continue
        try:
            data = Ref(parts[1].decode("ascii"), int(parts[2])).encode()
        except (ValueError, UnicodeDecodeError):
            continue
        if _blob_id(data, len(blob)) == blob:
            found[blob] = data
    return found


def remember_ref_blobs(
    cvfs_dir: Path, contents: Mapping[str, bytes], *, live: Mapping[str, bytes] | None = None
) -> None:
    """Note the blobs among contents that are refs in their canonical form (one appended write).
    Past MAX_BYTES the file is written afresh with these and `live` (refs just looked up, so
    likely still wanted): old versions and repeated lines go, the working set stays."""
    lines = _lines(contents)
    if not lines:
        return
    path = cvfs_dir / FILE
    with contextlib.suppress(OSError):  # a cache of answers: failing to write it costs only time
        cvfs_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > MAX_BYTES:
            fresh = dict.fromkeys(_lines(live or {}) + lines)  # each line once
            tmp = cvfs_dir / f"{FILE}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
            try:
                try:
                    writeback.write_all(fd, b"".join(fresh))
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
            return
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        try:
            os.write(fd, b"".join(lines))
        finally:
            os.close(fd)


def _lines(contents: Mapping[str, bytes]) -> list[bytes]:
    lines = []
    for blob, data in contents.items():
        try:
            ref = parse_ref(data)
        except RefError:
            continue
        if ref is not None and ref.encode() == data:
            lines.append(b"%s %s %d\n" % (blob.encode(), ref.hex.encode(), ref.size))
    return lines
