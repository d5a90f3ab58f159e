"""Crash points for the crash-safety tests: GIT_CVFS_CRASH_AT=<name> kills the process there.

SIGKILL, not an exception: nothing gets to clean up, exactly as when the machine
loses power or the OOM killer strikes. Unset, a crash point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("GIT_CVFS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
