"""Crash and fault points for the safety tests.

GIT_CVFS_CRASH_AT=<name> kills the process at a crash point; GIT_CVFS_FAIL_AT=<name>
makes a fault point raise the I/O error a failing disk would; GIT_CVFS_PAUSE_AT=<name>:<file>
holds the process at a pause point until the test removes <file>.

SIGKILL, not an exception: nothing gets to clean up, exactly as when the machine
loses power or the OOM killer strikes. Unset, a crash point costs one dict lookup.
"""

from __future__ import annotations

import errno
import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("GIT_CVFS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fault_point(name: str) -> None:
    """GIT_CVFS_FAIL_AT=<name> raises EIO here; <name>:<ERRNO> (ENOSPC, say) raises that one;
    <name>:BUG raises what a bug in git-cvfs would (a RuntimeError)."""
    given = os.environ.get("GIT_CVFS_FAIL_AT")
    if given is None:
        return
    point, _, code = given.rpartition(":")
    if code == "BUG" and point == name:
        raise RuntimeError(f"injected bug at {name}")
    if not (code.isupper() and hasattr(errno, code)):  # point names have colons; an errno name is last
        point, code = given, "EIO"
    if point == name:
        number = getattr(errno, code)
        raise OSError(number, f"{os.strerror(number)} (injected at {name})")


def pause_point(name: str) -> None:
    """GIT_CVFS_PAUSE_AT=<name>:<file> creates <file> here and waits (up to a minute) until it is
    removed: a test does something at this exact moment (an edit, a checkout), then lets go."""
    given = os.environ.get("GIT_CVFS_PAUSE_AT")
    if given is None or not given.startswith(name + ":"):
        return
    import time

    marker = given[len(name) + 1 :]
    with open(marker, "w"):
        pass
    deadline = time.monotonic() + 60
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
