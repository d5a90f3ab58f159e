"""GIT_CVFS_TRACE: what git-cvfs does, a line per step, as GIT_TRACE does for git.

GIT_CVFS_TRACE=1 (or 2, or true) writes to stderr; an absolute path appends to that file
(git runs the filter with its stderr on the user's terminal, and a file keeps a clone's
trace apart from its output). Lines are `HH:MM:SS.micro pid category: message`: the
filter's requests and replies, and every call to an archive with its duration.
A trace carries paths, oids, sizes and archive URLs, never credentials (they pass the same
redaction as all output).
"""

from __future__ import annotations

import os
import sys
import time

_TARGET = os.environ.get("GIT_CVFS_TRACE", "")
ENABLED = _TARGET.lower() not in ("", "0", "false", "no", "off")


def trace(category: str, message: str) -> None:
    """One line, when tracing is on. Callers on hot paths test ENABLED first."""
    if not ENABLED:
        return
    from git_cvfs.output import redact

    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    line = redact(f"{stamp} {os.getpid()} {category}: {message}\n")
    if _TARGET.startswith("/"):
        try:
            with open(_TARGET, "a", encoding="utf-8") as out:
                out.write(line)
            return
        except OSError:
            pass  # as git does with a trace file it cannot open: fall back to stderr
    sys.stderr.write(line)
    sys.stderr.flush()
