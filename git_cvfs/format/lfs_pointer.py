"""Git LFS pointer files (docs/spec.md in git-lfs), read so `migrate import --from-lfs` can
turn them into refs: an LFS oid is the sha256 of the content, as ours is."""

from __future__ import annotations

import re

from git_cvfs.format.ref import MAX_SIZE, Ref

MAX_POINTER_BYTES = 1024
_VERSIONS = (b"https://git-lfs.github.com/spec/v1", b"https://hawser.github.com/spec/v1")
_LINE = re.compile(rb"([a-z0-9.-]+) ([^\n]*)\n")


def parse_lfs_pointer(data: bytes) -> Ref | None:
    """The object a Git LFS pointer names, or None when data is not a pointer: version first,
    keys sorted after it, an oid of 64 lowercase hex digits and a size, every line ended."""
    if len(data) > MAX_POINTER_BYTES or not data.startswith(b"version "):
        return None
    pos = 0
    fields: list[tuple[bytes, bytes]] = []
    while pos < len(data):
        match = _LINE.match(data, pos)
        if match is None:
            return None
        fields.append((match.group(1), match.group(2)))
        pos = match.end()
    if not fields or fields[0][0] != b"version" or fields[0][1] not in _VERSIONS:
        return None
    keys = [k for k, _ in fields[1:]]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        return None
    values = dict(fields[1:])
    oid, size = values.get(b"oid", b""), values.get(b"size", b"")
    if not re.fullmatch(rb"sha256:[0-9a-f]{64}", oid) or not re.fullmatch(rb"0|[1-9][0-9]{0,18}", size):
        return None
    if int(size) > MAX_SIZE:
        return None
    return Ref(oid[len(b"sha256:") :].decode("ascii"), int(size))
