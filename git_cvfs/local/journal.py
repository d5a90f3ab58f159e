"""Path lists one process leaves for another: the filter writes, a hook takes.

git runs post-checkout before it closes the filter process, so the filter cannot
hand over a list at exit. Each filter process appends to its own file, one
NUL-terminated path per write, before it answers git for that path; a taker
renames each file away first, so every list is taken exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path


class PathJournal:
    """Appends paths to `<directory>/<pid>.list`, opened on first use and kept open for the process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd = -1

    def append(self, path: str) -> None:
        if self._fd == -1:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.directory / f"{os.getpid()}.list", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        os.write(self._fd, path.encode("utf-8", "surrogateescape") + b"\0")


def take_paths(directory: Path) -> list[str]:
    """Claim every list in `directory` (each once, even with several takers); the paths in order, deduplicated."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    paths: list[str] = []
    for name in names:
        if not name.endswith(".list"):
            continue
        claimed = directory / f"{name}.{os.getpid()}.taken"
        try:
            os.rename(directory / name, claimed)
        except FileNotFoundError:
            continue  # another hook or ensure took it
        data = claimed.read_bytes()
        claimed.unlink()
        paths.extend(p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p)
    return list(dict.fromkeys(paths))
