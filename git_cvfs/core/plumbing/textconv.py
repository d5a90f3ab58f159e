"""What `git diff`, `git log -p` and blame show for a managed file (diff.cvfs.textconv; the shell
shim hooks/textconv.sh answers plain refs itself and hands anything else to this)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from git_cvfs.errors import RefError
from git_cvfs.format.ref import MAX_REF_BYTES, Ref, parse_ref
from git_cvfs.format.size import format_size

# A managed path below minSize stays a plain blob: text that size or under diffs as itself.
TEXT_MAX = 1 << 20


def textconv(path: Path) -> bytes:
    """For data (a ref, or the bytes it stands for) its oid and size, the same either way; for a
    small text file kept as a plain blob, the text itself."""
    with open(path, "rb") as f:
        head = f.read(MAX_REF_BYTES + 1)
        try:
            ref = parse_ref(head)
        except RefError as exc:
            return f"invalid git-cvfs ref: {exc.message}\n".encode()
        if ref is None:
            rest = f.read(TEXT_MAX + 1 - len(head))
            text = head + rest
            if len(text) <= TEXT_MAX and b"\0" not in text:
                return text
            h = hashlib.sha256(text)
            size = len(text)
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
            ref = Ref(h.hexdigest(), size)
    return f"oid {ref.oid}\nsize {ref.size} ({format_size(ref.size)})\n".encode()
