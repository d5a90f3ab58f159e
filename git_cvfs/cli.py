"""main(argv): a lazy command table and the one place errors become exit codes."""

from __future__ import annotations

import errno
import importlib
import os
import sys

from git_cvfs import __version__
from git_cvfs.errors import EXIT_INTERRUPTED, EXIT_USAGE, CvfsError

# Not `from typing import TYPE_CHECKING`: typing (with re and contextlib) costs a hook
# with nothing to do about 13 ms at start-up. Type checkers treat this name the same.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# name -> (module under git_cvfs.commands, one-line summary). Importing a module
# happens only when its command runs, so `--help` and hooks stay fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("install", "set up the git filter and hooks"),
    "uninstall": ("install", "remove the git filter and hooks"),
    "init": ("init", "scaffold .cvfs/ and .gitattributes in this repository"),
    "track": ("track", "manage paths matching a pattern (.gitattributes)"),
    "untrack": ("track", "stop managing a pattern"),
    "try": ("try_demo", "a guided demo on a throwaway project"),
    "register": ("adding", "hash and record files (e.g. gitignored) in the inventory, without uploading"),
    "scan": ("adding", "large files in scope that are not managed yet"),
    "ingest": ("adding", "archive a file from outside and place its ref at a managed path"),
    "push": ("push", "upload objects the archives lack"),
    "fetch": ("fetch", "download objects into the cache, leaving the work tree alone"),
    "ensure": ("ensure", "materialize refs in the work tree"),
    "preflight": ("ensure", "exit 1 if any of the paths is still a ref"),
    "offload": ("offload", "verify the archive holds files, then replace them with refs to free disk"),
    "status": ("status", "managed files by state, and totals"),
    "ls-files": ("status", "managed files with their state"),
    "doctor": ("doctor", "check install, config, credentials and archive access"),
    "trust": ("trust", "show the archive locations this repository names, and approve them on this machine"),
    "archive": ("archive", "write a tar or zip of a revision with every managed file's data in it"),
    "reconcile": ("reconcile", "audit work tree, inventory and every archive; exit 1 on drift"),
    "resolve": ("inspect", "JSON about one path: oid, size, state, archive URLs, etag, cache path"),
    "guard": ("inspect", "exit 1 if deleting the paths would lose bytes that are nowhere else"),
    "fsck": ("inspect", "verify cache objects, refs and inventory shards"),
    "prune": ("inspect", "drop cache objects the primary archive is confirmed to hold"),
    "filter-process": ("filter", "git's long-running filter (run by git)"),
    "clean": ("filter", "single-file clean filter (run by git)"),
    "smudge": ("filter", "single-file smudge filter (run by git)"),
    "textconv": ("plumbing", "show a ref as oid and size (git diff)"),
    "merge-ref": ("plumbing", "merge driver for managed files (run by git)"),
    "merge-index": ("plumbing", "merge driver for inventory shards (run by git)"),
    "hook-impl": ("plumbing", "run a hook (called by the installed shims)"),
}


def _top_help() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: git cvfs <command> [options]",
        "",
        "Large files in git as tiny refs, their bytes in archives you own.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`git cvfs <command> --help` for a command's options. Start with `git cvfs try`."]
    return "\n".join(lines)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("--version", "version"):
        print(f"git-cvfs {__version__}")
        return 0
    name = argv[0]
    if name == "hook-impl" and len(argv) > 1 and not argv[1].startswith("-"):
        from git_cvfs.commands.hook_fast import nothing_to_do, run_hook

        if nothing_to_do(argv[1]):  # the usual case, before argparse and the core are imported
            return 0
        return run_hook(argv[1], argv[2:])  # as git runs it: argparse would add nothing
    if argv == ["filter-process"]:  # as git runs it: before argparse, which it has no use for
        from git_cvfs.commands.filter import filter_process

        filter_process()
    if name not in COMMANDS:
        raise _usage(f"unknown command {name!r}", "run `git cvfs --help` for the list of commands")
    module = importlib.import_module(f"git_cvfs.commands.{COMMANDS[name][0]}")
    parser = _parser(prog=f"git cvfs {name}", description=COMMANDS[name][1])
    module.add_arguments(name, parser)
    args = parser.parse_args(argv[1:])
    result: int = module.run(name, args)
    return result


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser whose errors are usage errors (argparse is imported only here: hooks skip it)."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise _usage(f"{self.prog}: {message}", f"run `{self.prog} --help` for its options")

    return Parser(prog=prog, description=description)


def _usage(message: str, hint: str) -> CvfsError:
    from git_cvfs.errors import UsageError

    return UsageError(message, hint)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except CvfsError as exc:
        if os.environ.get("GIT_CVFS_TRACE") == "1":
            _print_traceback()
        from git_cvfs import output

        output.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 1
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRORS:
            return _internal_error(exc)
        from git_cvfs import output

        where = f": {exc.filename}" if exc.filename else ""
        output.error(f"{exc.strerror or exc}{where}", _ENVIRONMENT_ERRORS[exc.errno])
        return 1
    except Exception as exc:
        return _internal_error(exc)


# Errors from the user's machine, not from git-cvfs: a full disk, a read-only or failing one,
# permissions. Any other OSError reaching main is a bug.
_ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "free some disk space, then run the command again",
    errno.EDQUOT: "your disk quota is used up: free some space, then run the command again",
    errno.EROFS: "that filesystem is mounted read-only",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EIO: "the disk reported an I/O error: check it (dmesg) before trusting what is on it",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or lower transfer.concurrency",
    errno.ENFILE: "the system ran out of open files: retry when fewer programs are running",
}


def _internal_error(exc: Exception) -> int:
    """A bug: one line, and the traceback for GIT_CVFS_TRACE=1."""
    if os.environ.get("GIT_CVFS_TRACE") == "1":
        _print_traceback()
    from git_cvfs import output

    output.error(
        f"internal error: {type(exc).__name__}: {exc}",
        "rerun with GIT_CVFS_TRACE=1 for the traceback, and report it",
    )
    return 1


def _print_traceback() -> None:
    import traceback

    from git_cvfs.output import redact

    sys.stderr.write(redact(traceback.format_exc()))
