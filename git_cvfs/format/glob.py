"""gitignore-style path patterns for fetch.include / fetch.exclude and scope prefixes."""

from __future__ import annotations

import re
from functools import lru_cache

_NEVER = re.compile("(?!)")


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    pat = pattern.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
    body = _translate(pat)
    if body is None:
        return _NEVER
    # A pattern without a slash matches a name at any depth, as in .gitignore;
    # a matched directory matches everything under it.
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{body}(?:/.*)?")


@lru_cache(maxsize=256)
def _compile_attr(pattern: str) -> re.Pattern[str]:
    """As .gitattributes reads a pattern: no slash matches a name at any depth, a slash anchors
    it, and a pattern names files only (a directory's attributes are not its files')."""
    if pattern.endswith("/"):
        return _NEVER
    anchored = "/" in pattern
    body = _translate(pattern.lstrip("/"))
    if body is None:
        return _NEVER
    return re.compile(("" if anchored else "(?:.*/)?") + body)


def _translate(pat: str) -> str | None:
    """The regular expression for a wildmatch pattern; None when it can match nothing."""
    out = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "\\" and i + 1 < len(pat):  # an escaped character stands for itself
            out.append(re.escape(pat[i + 1]))
            i += 2
        elif pat[i] == "[":
            found = _bracket(pat, i)
            if found is None:
                return None  # as git: a class that is not closed makes the pattern match nothing
            cls, i = found
            out.append(cls)
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return "".join(out)


_POSIX = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9a-fA-F",
}


def _bracket(pat: str, start: int) -> tuple[str, int] | None:
    """A `[...]` class at pat[start], as git's wildmatch reads it: `!` or `^` negates, `]` first
    is literal, ranges, `\\` escapes, `[:alpha:]` and the other POSIX classes; it never
    matches `/`. None when it is not closed."""
    i = start + 1
    negate = i < len(pat) and pat[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while i < len(pat):
        c = pat[i]
        if c == "]" and not first:
            body = "".join(parts)
            return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), i + 1
        first = False
        if c == "[" and pat.startswith("[:", i):
            end = pat.find(":]", i + 2)
            name = pat[i + 2 : end] if end != -1 else ""
            if name in _POSIX:
                parts.append(_POSIX[name])
                i = end + 2
                continue
        if c == "\\" and i + 1 < len(pat):
            i += 1
            c = pat[i]
        if i + 2 < len(pat) and pat[i + 1] == "-" and pat[i + 2] != "]":
            hi = pat[i + 2]
            if hi == "\\" and i + 3 < len(pat):
                hi = pat[i + 3]
                i += 1
            parts.append(f"{re.escape(c)}-{re.escape(hi)}")
            i += 3
            continue
        parts.append(re.escape(c))
        i += 1
    return None


def wildmatch_regex(pattern: str) -> str | None:
    """A regular expression for the whole path, as git's wildmatch reads the pattern with
    WM_PATHNAME (`*` within a directory, `**` across them); None when it can match nothing."""
    return _translate(pattern)


def match_path(pattern: str, path: str) -> bool:
    return _compile(pattern).fullmatch(path) is not None


def match_any(patterns: tuple[str, ...] | list[str], path: str) -> bool:
    return any(match_path(p, path) for p in patterns)


def match_attr_pattern(pattern: str, path: str) -> bool:
    """Whether a .gitattributes pattern (relative to its file's directory) names path."""
    return _compile_attr(pattern).fullmatch(path) is not None
