"""gitignore-style path patterns for fetch.include / fetch.exclude and scope prefixes."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    pat = pattern.lstrip("/")
    if pat.endswith("/"):
        pat += "**"
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
        else:
            out.append(re.escape(pat[i]))
            i += 1
    body = "".join(out)
    # A pattern without a slash matches a name at any depth, as in .gitignore;
    # a matched directory matches everything under it.
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{body}(?:/.*)?")


def match_path(pattern: str, path: str) -> bool:
    return _compile(pattern).fullmatch(path) is not None


def match_any(patterns: tuple[str, ...] | list[str], path: str) -> bool:
    return any(match_path(p, path) for p in patterns)
