"""format/glob.py reads patterns as git does: every pattern below, against every path, gives
the answer `git check-ignore --no-index` gives (one pattern at a time, as an excludes file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from git_cvfs.format.glob import match_path

PATTERNS = [
    "data/**",
    "*.bin",
    "data/*.bin",
    "**/raw",
    "raw/",
    "/top.bin",
    "d?ta/*",
    "**/x/**",
    "a/**/b",
    "data/[ab]*.bin",
    "data/[!a]*.bin",
    "data/[^a]*.bin",
    "data/[a-c].bin",
    "data/[]]x",
    "data/[a-]x",
    "data/\\*.bin",
    "data/file\\[1\\].bin",
    "[[:digit:]]*.bin",
    "data/[[:upper:]]*",
    "data/[[:alpha:]][[:digit:]].bin",
    "*",
    "data",
    "data/",
    "**",
    "x/*/y",
    "data/raw/*",
    "*/raw",
    "data/?.bin",
    "[",
    "data/[",
    "te\\st",
    "sp ace.bin",
]
PATHS = [
    "data/a.bin",
    "data/b.bin",
    "data/d.bin",
    "data/c.bin",
    "data/a1.bin",
    "data/B.bin",
    "data/q1.bin",
    "data/raw/x.bin",
    "raw/x",
    "x/raw/y",
    "raw",
    "top.bin",
    "sub/top.bin",
    "dota/q",
    "data/*.bin",
    "data/file[1].bin",
    "data/file1.bin",
    "a/b",
    "a/x/y/b",
    "a/b/c",
    "x/y",
    "x/q/y",
    "1.bin",
    "x1.bin",
    "data/]x",
    "data/-x",
    "data/ax",
    "data",
    "data/[",
    "[",
    "test",
    "te\\st",
    "sp ace.bin",
    "data/x/raw",
]


def test_patterns_match_as_git_check_ignore_says(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    disagree = []
    for n, pattern in enumerate(PATTERNS):
        excludes = tmp_path / f"excludes-{n}"
        excludes.write_text(pattern + "\n")
        out = subprocess.run(
            ["git", "-c", f"core.excludesFile={excludes}", "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n"],
            cwd=repo,
            input="\0".join(PATHS) + "\0",
            capture_output=True,
            text=True,
        ).stdout.split("\0")
        # -z -v -n: source, line number, pattern, path, for each path in turn
        for i in range(0, len(out) - 1, 4):
            source, path = out[i], out[i + 3]
            if (source != "") != match_path(pattern, path):
                disagree.append((pattern, path, "git ignores" if source else "git does not"))
    assert not disagree, disagree
    assert len(PATTERNS) * len(PATHS) >= 1000
