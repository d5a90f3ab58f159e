"""Does a hook have anything to do? Answered before anything heavy is imported.

git runs post-checkout on every checkout and post-commit on every commit; most of
the time there is nothing for git-cvfs to do. Only os and subprocess are imported
here: the core's imports cost more than the rest of the process.
"""

from __future__ import annotations

import os
import subprocess


def nothing_to_do(hook: str) -> bool:
    if hook in ("post-checkout", "post-merge"):
        proc = subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True, text=True)
        if proc.returncode != 0:
            return False
        return not _has_list(os.path.join(proc.stdout.strip(), "cvfs", "pending"))
    if hook == "post-commit":
        # Nothing to re-sync when the index already agrees with HEAD on every shard.
        quiet = ["git", "diff-index", "--cached", "--quiet", "HEAD", "--", ".cvfs/index"]
        return subprocess.run(quiet, capture_output=True).returncode == 0
    return False


def _has_list(directory: str) -> bool:
    try:
        return any(name.endswith(".list") for name in os.listdir(directory))
    except FileNotFoundError:
        return False
