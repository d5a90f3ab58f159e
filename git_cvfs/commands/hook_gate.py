"""Does a hook have anything to do? Answered before anything heavy is imported.

git runs post-checkout on every checkout and post-commit on every commit; most of
the time there is nothing for git-cvfs to do. Only os is imported up front (and
subprocess when git must be asked): the core's imports cost more than the rest of
the process, and subprocess alone about 8 ms. A hook with work to do goes to run_hook
without argparse (about 17 ms), as git runs every hook with its arguments only.
"""

from __future__ import annotations

import os


def nothing_to_do(hook: str) -> bool:
    if hook in ("post-checkout", "post-merge"):
        git_dir = git_dir_here()
        if git_dir is None:
            return False
        if os.path.exists(os.path.join(git_dir, "cvfs", "budget-due")):  # core/budget.py DUE_FILE
            return False
        return not _has_list(os.path.join(git_dir, "cvfs", "pending"))
    if hook in ("post-commit", "post-applypatch"):
        git_dir = git_dir_here()
        if git_dir is None or any(os.path.isdir(os.path.join(git_dir, d)) for d in ("rebase-merge", "rebase-apply")):
            return False  # a rebase or `git am` commits without pre-commit: its rows get checked
        if os.path.exists(os.path.join(git_dir, "cvfs", "claim-due")):  # core/model/claims.py CLAIM_DUE
            return False  # the first commit's objects were archived: record the repository
        import subprocess

        # Nothing to re-sync when the index already agrees with HEAD on every shard.
        quiet = ["git", "diff-index", "--cached", "--quiet", "HEAD", "--", ".cvfs/index"]
        return subprocess.run(quiet, capture_output=True).returncode == 0
    return False


def run_hook(hook: str, args: list[str]) -> int:
    """The hook, once nothing_to_do has said it has work (or cannot tell)."""
    from git_cvfs.core.model.workspace import Workspace
    from git_cvfs.core.plumbing import hooks

    return hooks.run_hook(Workspace.discover(), hook, args)


def git_dir_here() -> str | None:
    """`git rev-parse --git-dir` for the directory git runs a hook in (the top of the work tree).

    The plain layouts are read directly, with no git process: a `.git` directory, or a
    `.git` file (linked work trees, submodules) that names the git dir, or GIT_DIR naming a
    directory (git clone runs its post-checkout so). Anything else (GIT_DIR naming a `.git`
    file, GIT_WORK_TREE or GIT_COMMON_DIR set, a work tree configured apart from its
    repository) asks git.
    """
    given = os.environ.get("GIT_DIR")
    if given is not None and "GIT_COMMON_DIR" not in os.environ and os.path.isdir(given):
        return given  # what git answers: GIT_DIR as given; GIT_WORK_TREE does not change it
    if not any(name in os.environ for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")):
        if os.path.isdir(".git"):
            return ".git"
        try:
            with open(".git", "rb") as f:
                head = f.read(4097)
        except OSError:
            head = b""
        if head.startswith(b"gitdir: ") and len(head) <= 4096:
            named = os.fsdecode(head[len(b"gitdir: ") :].rstrip(b"\r\n"))
            if named and os.path.isdir(named):  # relative to the .git file's directory: here
                return named
    import subprocess

    proc = subprocess.run(["git", "rev-parse", "--git-dir"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _has_list(directory: str) -> bool:
    try:
        return any(name.endswith(".list") for name in os.listdir(directory))
    except FileNotFoundError:
        return False
