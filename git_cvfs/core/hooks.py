"""Render, install, chain, upgrade and remove the hook shims."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import NamedTuple

from git_cvfs import __version__
from git_cvfs.errors import CvfsError
from git_cvfs.local.git import Repo

SHIM_ID = "ID: git-cvfs-hook-shim"
LEGACY_SUFFIX = ".pre-cvfs"
# hook -> (reads stdin, exit code when git-cvfs is missing): pre-hooks must not let
# unarchived data through, post-hooks must never fail the command that ran them.
HOOKS = {
    "pre-commit": (False, 1),
    "pre-push": (True, 1),
    "post-checkout": (False, 0),
    "post-merge": (False, 0),
    "post-commit": (False, 0),
}


def executable() -> str:
    """The git-cvfs that is running, by absolute path: hooks and filters then skip PATH and shims."""
    beside_python = Path(sys.executable).parent / "git-cvfs"
    if beside_python.exists():
        return str(beside_python)
    argv0 = Path(sys.argv[0])
    if argv0.is_absolute() and argv0.name == "git-cvfs":
        return str(argv0)
    import shutil

    return shutil.which("git-cvfs") or "git-cvfs"


# Beside the package's modules (package data). Read as a plain file: importlib.resources
# brings tempfile, shutil and zlib/bz2/lzma with it, 30 ms of every clone's first smudge
# (the filter installs the hooks then), for a package that is never imported from a zip.
SHIM_TEMPLATE = Path(__file__).parent.parent / "shims" / "shim.sh"


def render(hook: str, exe: str) -> str:
    reads_stdin, missing_exit = HOOKS[hook]
    return (
        _template()
        .replace("@HOOK@", hook)
        .replace("@GIT_CVFS@", exe.replace("'", "'\\''"))
        .replace("@VERSION@", __version__)
        .replace("@READS_STDIN@", "1" if reads_stdin else "0")
        .replace("@MISSING_EXIT@", str(missing_exit))
    )


@functools.cache
def _template() -> str:
    return SHIM_TEMPLATE.read_text()


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return SHIM_ID.encode() in f.read(512)
    except (FileNotFoundError, IsADirectoryError):
        return False


class HookChange(NamedTuple):
    hook: str
    action: str  # installed, upgraded, unchanged, chained, removed, restored

    def describe(self, hooks_dir: Path) -> str:
        return f"{self.action} {hooks_dir / self.hook}"


def hooks_dir(repo: Repo) -> Path:
    return repo.hooks_dir


def install_hooks(repo: Repo, *, exe: str | None = None) -> tuple[Path, list[HookChange]]:
    exe = exe or executable()
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    changes = []
    for hook in HOOKS:
        target = directory / hook
        text = render(hook, exe)
        action = "installed"
        if target.exists() or target.is_symlink():
            if is_ours(target):
                if target.read_text() == text:
                    changes.append(HookChange(hook, "unchanged"))
                    continue
                action = "upgraded"
            else:
                legacy = directory / (hook + LEGACY_SUFFIX)
                if legacy.exists() or legacy.is_symlink():
                    raise CvfsError(
                        f"{target} is another tool's hook and {legacy.name} is taken too; not overwriting either",
                        hint=f"merge them into one hook at {legacy}, then run `git cvfs install` again",
                    )
                os.replace(target, legacy)
                action = "chained"
        tmp = directory / f".{hook}.cvfs-tmp"
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, target)
        changes.append(HookChange(hook, action))
    return directory, changes


def install_missing_hooks(repo: Repo) -> None:
    """Cheap check the filter process makes on first use, so a plain clone gets the hooks."""
    directory = hooks_dir(repo)
    if all(is_ours(directory / hook) for hook in HOOKS):
        return
    install_hooks(repo)


def uninstall_hooks(repo: Repo) -> tuple[Path, list[HookChange]]:
    directory = hooks_dir(repo)
    changes = []
    for hook in HOOKS:
        target = directory / hook
        if not is_ours(target):
            continue
        target.unlink()
        legacy = directory / (hook + LEGACY_SUFFIX)
        if legacy.exists() or legacy.is_symlink():
            os.replace(legacy, target)
            changes.append(HookChange(hook, "restored"))
        else:
            changes.append(HookChange(hook, "removed"))
    return directory, changes
