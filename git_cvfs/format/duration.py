"""Durations as users write them: 14d, 12h, 30m, 45s, 2w, or a number of seconds."""

from __future__ import annotations

import re

from git_cvfs.errors import UsageError

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"invalid {what} {text!r}", hint="write a number with a unit: 14d, 12h, 30m, 45s (or 2w)")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def format_duration(seconds: float) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
