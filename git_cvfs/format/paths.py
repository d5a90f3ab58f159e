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
    # Only a component that starts with a dot can be '.', '..' or .git, one with '~' its 8.3
    # short name (GIT~1), one with other than ASCII an HFS+ alias: the usual path is not split.
    if path[0] == "." or "/." in path or "~" in path or not path.isascii():
        for part in path.split("/"):
            if part in (".", ".."):
                raise UnsafePathError(f"unsafe path {path[:80]!r}: empty, '.' or '..' component")
            if is_dotgit(part):
                raise UnsafePathError(f"unsafe path {path[:80]!r}: it points into .git")
    return path


# Code points HFS+ ignores in names: ".g\u200cit" is .git there (git's is_hfs_dotgit).
_HFS_IGNORED = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)


def is_dotgit(part: str) -> bool:
    """A path component that some filesystem opens as the .git directory: any case, trailing
    dots and spaces (NTFS drops them), an NTFS stream suffix (`.git::$INDEX_ALLOCATION`), the
    NTFS short name `GIT~1`, and code points HFS+ ignores; as git's verify_path and dulwich's
    path validators do."""
    if _HFS_IGNORED.intersection(part):
        part = "".join(c for c in part if c not in _HFS_IGNORED)
    name = part.lower().split(":", 1)[0].rstrip(". ")
    return name in (".git", "git~1")
