"""Human sizes: "50MB" <-> bytes. Units are binary, as in git config (50MB == 50 MiB)."""

from __future__ import annotations

import re

from git_cvfs.errors import ConfigError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str, *, what: str = "size") -> int:
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"invalid {what} {text!r}",
            hint="write a whole number of bytes or one with a unit: 512KB, 50MB, 2GB (units are powers of 1024)",
        )
    number, unit = match.groups()
    value = float(number) * _UNITS[unit.lower()]
    if value >= 2**63:
        raise ConfigError(f"invalid {what} {text!r}: too large", hint="use a size below 8 EiB")
    return int(value)


def format_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
