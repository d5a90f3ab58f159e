""".gitattributes as git reads them, for commits that are not checked out: which filter a path
has, given every .gitattributes file of one commit, and the line edits `migrate` makes.

Git 2.39's check-attr cannot read attributes from a commit (`--source` came in 2.40), and a
history rewrite must decide for every commit, so this reads them itself: later lines win
over earlier ones, a deeper file over a shallower one; `-filter` and `!filter` unset it.
Macros other than the built-in `binary` (which sets no filter) are not expanded.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from git_cvfs.format.glob import match_attr_pattern

ATTRIBUTES_FILE = ".gitattributes"


def unquote_c(text: str) -> str:
    """A C-quoted string as git writes paths and patterns ("a\\"b", octal escapes for
    bytes); surrogateescape keeps bytes that are not UTF-8."""
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return text
    body = text[1:-1]
    out = bytearray()
    i = 0
    simple = {
        "n": b"\n",
        "t": b"\t",
        '"': b'"',
        "\\": b"\\",
        "a": b"\a",
        "b": b"\b",
        "f": b"\f",
        "r": b"\r",
        "v": b"\v",
    }
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in simple:
                out += simple[nxt]
                i += 2
                continue
            if nxt in "0123" and body[i + 1 : i + 4].isdigit() and len(body[i + 1 : i + 4]) == 3:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def quote_c(text: str, *, spaces: bool = False) -> str:
    """text as git quotes a path when it must (control characters, quotes, backslashes, bytes
    above ASCII; with spaces, whitespace too, as a .gitattributes pattern needs); otherwise as is."""
    raw = text.encode("utf-8", "surrogateescape")
    plain = not text.startswith('"') and not any(b < 0x20 or b >= 0x7F or b in b'"\\' for b in raw)
    if plain and not (spaces and any(c.isspace() for c in text)):
        return text
    names = {0x0A: "\\n", 0x09: "\\t", 0x22: '\\"', 0x5C: "\\\\"}
    parts = []
    for b in raw:
        if b in names:
            parts.append(names[b])
        elif b < 0x20 or b >= 0x7F:
            parts.append(f"\\{b:03o}")
        else:
            parts.append(chr(b))
    return '"' + "".join(parts) + '"'


def _split_line(line: str) -> tuple[str, list[str]] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or stripped.startswith("[attr]"):
        return None
    if stripped.startswith('"'):
        end = 1
        while end < len(stripped) and stripped[end] != '"':
            end += 2 if stripped[end] == "\\" else 1
        pattern = unquote_c(stripped[: end + 1])
        rest = stripped[end + 1 :]
    else:
        pattern, _, rest = stripped.partition(" ")
        if "\t" in pattern:
            pattern, _, more = pattern.partition("\t")
            rest = more + " " + rest
    return pattern, rest.split()


def filter_rules(content: bytes) -> list[tuple[str, str | None]]:
    """(pattern, filter driver or None for unset) for each line that says anything about filter."""
    rules: list[tuple[str, str | None]] = []
    for line in content.decode("utf-8", "surrogateescape").splitlines():
        parsed = _split_line(line)
        if parsed is None:
            continue
        pattern, attrs = parsed
        for attr in attrs:
            if attr.startswith("filter="):
                rules.append((pattern, attr[len("filter=") :]))
            elif attr in ("-filter", "!filter", "filter"):
                rules.append((pattern, None))
    return rules


class CommitAttributes:
    """The filter attribute for paths of one commit, from its .gitattributes files."""

    def __init__(self, files: Mapping[str, list[tuple[str, str | None]]]) -> None:
        # directory ("" for the top) -> its file's rules; shallow first, so deeper ones win
        self._by_dir = sorted(files.items(), key=lambda item: (item[0].count("/"), item[0]))

    def filter_of(self, path: str) -> str | None:
        found: str | None = None
        for directory, rules in self._by_dir:
            if directory:
                if not path.startswith(directory + "/"):
                    continue
                relative = path[len(directory) + 1 :]
            else:
                relative = path
            for pattern, driver in rules:
                if match_attr_pattern(pattern, relative):
                    found = driver
        return found


def attributes_dir(path: str) -> str | None:
    """The directory a .gitattributes file at path governs, or None if path is not one."""
    if posixpath.basename(path) != ATTRIBUTES_FILE:
        return None
    return posixpath.dirname(path)


def swap_attrs(content: bytes, swaps: Mapping[str, str]) -> bytes:
    """Each attribute token named in swaps (as `filter=lfs`) becomes its value, on every line
    that is not a comment; the rest stays byte for byte."""
    out = []
    for line in content.decode("utf-8", "surrogateescape").splitlines(keepends=True):
        if _split_line(line) is not None:
            for old, new in swaps.items():
                line = re.sub(rf"(?<=\s){re.escape(old)}(?=\s|$)", new, line)
        out.append(line)
    return "".join(out).encode("utf-8", "surrogateescape")


def drop_driver(content: bytes, driver: str, drop_lines: tuple[str, ...] = ()) -> bytes:
    """Remove filter/diff/merge=driver from every line, and lines left naming nothing, and the
    lines in drop_lines (compared stripped)."""
    out = []
    for line in content.decode("utf-8", "surrogateescape").splitlines(keepends=True):
        if line.strip() in drop_lines:
            continue
        parsed = _split_line(line)
        if parsed is not None:
            pattern, attrs = parsed
            kept = [a for a in attrs if a not in (f"filter={driver}", f"diff={driver}", f"merge={driver}")]
            if len(kept) != len(attrs):
                if set(kept) <= {"-text", "merge=binary"}:  # what `git cvfs track` wrote with it
                    continue
                ending = "\n" if line.endswith("\n") else ""
                line = " ".join([quote_c(pattern, spaces=True), *kept]) + ending
        out.append(line)
    return "".join(out).encode("utf-8", "surrogateescape")


def escape_glob(path: str) -> str:
    """A literal path as a pattern that names exactly it (anchored at the file's directory)."""
    out = "".join("\\" + c if c in "*?[]\\!#" else c for c in path)
    return "/" + out
