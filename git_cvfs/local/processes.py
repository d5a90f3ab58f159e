"""Whether a process still runs: for a temporary file's writer, or a mount's daemon."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (one of ours that exited and was not reaped yet)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: it exists
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
