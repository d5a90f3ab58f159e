"""Paths from untrusted input (refs' paths in inventory rows, ingest targets): checked before
any file is opened with them."""

from __future__ import annotations

from git_cvfs.errors import UnsafePathError

MAX_PATH = 4096


def validate_repo_path(path: object) -> str:
    """A work-tree-relative path that cannot escape the work tree or reach into .git."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"invalid path {path!r}")
    if len(path) > MAX_PATH or "\0" in path or "\\" in path:
        raise UnsafePathError(f"unsafe path {path[:80]!r}")
    if path.startswith("/"):
        raise UnsafePathError(f"unsafe path {path[:80]!r}: absolute paths are not allowed")
    if path.endswith("/") or "//" in path:
        raise UnsafePathError(f"unsafe path {path[:80]!r}: empty, '.' or '..' component")
    if path[0] == "." or "/." in path:  # only a component that starts with a dot can be '.', '..' or .git
        for part in path.split("/"):
            if part in (".", ".."):
                raise UnsafePathError(f"unsafe path {path[:80]!r}: empty, '.' or '..' component")
            if part.lower().rstrip(". ") == ".git":
                raise UnsafePathError(f"unsafe path {path[:80]!r}: it points into .git")
    return path
