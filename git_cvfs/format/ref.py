"""The inline JSON ref git stores in place of a managed file's bytes.

    {"cvfs":1,"oid":"sha256:<64 lowercase hex>","size":<decimal bytes>}\n

`parse_ref` answers three ways: a `Ref`, `None` for ordinary content, or a
`RefError` for content that plainly claims to be a ref but is not a valid one
(wrong version, bad oid, hostile values). Callers decide what an error means
for them: clean keeps such content as ordinary bytes, pre-commit refuses it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from git_cvfs.errors import RefError

FORMAT_VERSION = 1
MAX_REF_BYTES = 1024
# Sizes past 2**63 fit no filesystem or archive; refusing them keeps arithmetic honest.
MAX_SIZE = 2**63 - 1
OID_PREFIX = "sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = ("cvfs", "oid", "size")
# What makes content "claim" to be a ref: a JSON object whose first key is cvfs.
_CLAIM = re.compile(rb'\A\s*\{\s*"cvfs"\s*:')


class Ref(NamedTuple):  # not a dataclass: git waits for the filter's imports (see test_filter_process)
    hex: str
    size: int

    @property
    def oid(self) -> str:
        return OID_PREFIX + self.hex

    def encode(self) -> bytes:
        return b'{"cvfs":1,"oid":"sha256:%s","size":%d}\n' % (self.hex.encode("ascii"), self.size)


def validate_hex(hex_digest: str) -> str:
    """Return the hex digest if it is exactly 64 lowercase hex digits; used before any path is built."""
    if not isinstance(hex_digest, str) or not _HEX64.fullmatch(hex_digest):
        raise RefError(f"invalid object id {_clip(repr(hex_digest))}: expected 64 lowercase hex digits")
    return hex_digest


def parse_oid(oid: object) -> str:
    """`sha256:<hex>` -> `<hex>`, refusing anything else."""
    if not isinstance(oid, str) or not oid.startswith(OID_PREFIX):
        raise RefError(f"invalid oid {_clip(repr(oid))}: expected 'sha256:' and 64 lowercase hex digits")
    return validate_hex(oid[len(OID_PREFIX) :])


def claims_to_be_ref(data: bytes) -> bool:
    return len(data) <= MAX_REF_BYTES and _CLAIM.match(data) is not None


# A ref exactly as Ref.encode writes it, which is almost every ref git hands back: no JSON
# decoding needed. Anything else (spacing, key order, a future version) takes the full parse.
_CANONICAL = re.compile(rb'\{"cvfs":1,"oid":"sha256:([0-9a-f]{64})","size":(0|[1-9][0-9]{0,18})\}\n')


def parse_ref(data: bytes) -> Ref | None:
    """Parse `data` as a ref; `None` means it is ordinary content."""
    if (m := _CANONICAL.fullmatch(data)) is not None and (size := int(m[2])) <= MAX_SIZE:
        return Ref(m[1].decode("ascii"), size)
    if not claims_to_be_ref(data):
        return None
    return _decode_claimed(data)


def _decode_claimed(data: bytes) -> Ref:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RefError("ref is not valid UTF-8") from None
    import json  # here: every ref git hands back is canonical and never needs it (3 ms at start-up)

    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise RefError(f"ref is not valid JSON ({_clip(str(exc))})") from None
    if not isinstance(obj, dict):
        raise RefError("ref is not a JSON object")
    version = obj.get("cvfs")
    if type(version) is not int:
        raise RefError(f"ref has a non-integer format version {_clip(repr(version))}")
    if version > FORMAT_VERSION:
        raise RefError(
            f"ref format version {version} was written by a newer git-cvfs (this one reads version {FORMAT_VERSION})",
            hint="upgrade git-cvfs: pip install --upgrade git-cvfs",
        )
    if version != FORMAT_VERSION:
        raise RefError(f"ref has unknown format version {version}")
    unexpected = sorted(set(obj) - set(_KEYS))
    if unexpected:
        raise RefError(f"ref has unexpected keys: {_clip(', '.join(unexpected))}")
    missing = [k for k in _KEYS if k not in obj]
    if missing:
        raise RefError(f"ref lacks {', '.join(missing)}")
    hex_digest = parse_oid(obj["oid"])
    size = obj["size"]
    if type(size) is not int or size < 0 or size > MAX_SIZE:
        raise RefError(f"ref has invalid size {_clip(repr(size))}: expected a non-negative integer")
    return Ref(hex_digest, size)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
