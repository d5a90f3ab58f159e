from __future__ import annotations

import pytest

from git_cvfs.errors import ConfigError
from git_cvfs.format.glob import match_path
from git_cvfs.format.size import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("123", 123),
        ("1k", 1024),
        ("1KB", 1024),
        ("1KiB", 1024),
        ("50MB", 50 << 20),
        ("2g", 2 << 30),
        ("1.5MB", 3 << 19),
        (" 5 MB ", 5 << 20),
        ("10b", 10),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "MB", "-1", "1XB", "1e9", "1 000", "ten", "99999999999T", "5MB; rm -rf /"])
def test_bad_sizes_are_config_errors_with_a_hint(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size(text, what="scope.minSize")
    assert "scope.minSize" in info.value.message and info.value.hint


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 << 30) == "3.0 GiB"


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("data/**", "data/a/b.bin", True),
        ("data/**", "other/data/a", False),
        ("data/raw/**", "data/raw/x", True),
        ("data/raw/**", "data/rawx/x", False),
        ("*.bin", "a/b/c.bin", True),
        ("*.bin", "a/b/c.bin.txt", False),
        ("data/*.csv", "data/a.csv", True),
        ("data/*.csv", "data/x/a.csv", False),
        ("data/", "data/x/y", True),
        ("**/weights/*", "a/b/weights/w.pt", True),
        ("data/a?.bin", "data/ab.bin", True),
        ("data/a[1].bin", "data/a1.bin", True),  # a class, as git reads it
        ("data/a[1].bin", "data/a[1].bin", False),
        ("data/a\\[1\\].bin", "data/a[1].bin", True),
    ],
)
def test_glob(pattern: str, path: str, expected: bool) -> None:
    assert match_path(pattern, path) is expected
