"""Crash and fault points for the safety tests.

GIT_CVFS_CRASH_AT=<name> kills the process at a crash point; GIT_CVFS_FAIL_AT=<name>
makes a fault point raise the I/O error a failing disk would.

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
    if os.environ.get("GIT_CVFS_FAIL_AT") == name:
        raise OSError(errno.EIO, f"Input/output error (injected at {name})")
