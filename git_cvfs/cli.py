"""main(argv): a lazy command table and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import os
import sys

from git_cvfs import __version__
from git_cvfs.errors import ENVIRONMENT_HINTS, EXIT_INTERRUPTED, EXIT_SIGPIPE, EXIT_USAGE, CvfsError

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
    "register": ("register", "hash and record files (e.g. gitignored) in the inventory, without uploading"),
    "scan": ("scan", "large files in scope that are not managed yet"),
    "ingest": ("ingest", "archive a file from outside and place its ref at a managed path"),
    "push": ("push", "upload objects the archives lack"),
    "fetch": ("fetch", "download objects into the cache, leaving the work tree alone"),
    "ensure": ("ensure", "materialize refs in the work tree"),
    "preflight": ("ensure", "exit 1 if any of the paths is still a ref"),
    "offload": ("offload", "verify the archive holds files, then replace them with refs to free disk"),
    "mount": ("mount", "show a revision's tree at a directory, hydrating files as they are read"),
    "umount": ("mount", "unmount a git cvfs mount (also a stale one)"),
    "status": ("status", "managed files by state, and totals"),
    "ls-files": ("status", "managed files with their state"),
    "doctor": ("doctor", "check install, config, credentials and archive access"),
    "trust": ("trust", "show the archive locations this repository names, and approve them on this machine"),
    "archive": ("archive", "write a tar or zip of a revision with every managed file's data in it"),
    "reconcile": ("reconcile", "audit work tree, inventory and every archive; exit 1 on drift"),
    "resolve": ("resolve", "JSON about one path: oid, size, state, archive URLs, etag, cache path"),
    "guard": ("guard", "exit 1 if deleting the paths would lose bytes that are nowhere else"),
    "fsck": ("fsck", "verify cache objects, refs and inventory shards"),
    "prune": ("prune", "drop cache objects the primary archive is confirmed to hold"),
    "migrate": ("migrate", "bring history in (plain git blobs, Git LFS) and take it out again"),
    "gc": ("gc", "delete archived objects no ref, inventory row or recent upload needs (dry run unless --apply)"),
    "filter-process": ("filter", "git's long-running filter (run by git)"),
    "clean": ("filter", "single-file clean filter (run by git)"),
    "smudge": ("filter", "single-file smudge filter (run by git)"),
    "textconv": ("textconv", "show a ref as oid and size (git diff)"),
    "merge-ref": ("merge_ref", "merge driver for managed files (run by git)"),
    "merge-index": ("merge_index", "merge driver for inventory shards (run by git)"),
    "hook-impl": ("hook_impl", "run a hook (called by the installed shims)"),
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


def top_parser() -> argparse.ArgumentParser:
    """`git cvfs` itself, for its man page: the options it takes before a command."""
    parser = _parser(prog="git cvfs", description="Large files in git as tiny refs, their bytes in archives you own.")
    parser.usage = "git cvfs <command> [options]"
    parser.add_argument("--version", action="store_true", help="print the version")
    return parser


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0 if argv else EXIT_USAGE
    if argv[0] in ("--version", "version"):
        print(f"git-cvfs {__version__}")
        return 0
    name = argv[0]
    if name == "hook-impl" and len(argv) > 1 and not argv[1].startswith("-"):
        from git_cvfs.commands.hook_gate import nothing_to_do, run_hook

        if nothing_to_do(argv[1]):  # the usual case, before argparse and the core are imported
            return 0
        return run_hook(argv[1], argv[2:])  # as git runs it: argparse would add nothing
    if argv == ["filter-process"]:  # as git runs it: before argparse, which it has no use for
        from git_cvfs.commands.filter import filter_process

        filter_process()
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, [n for n in COMMANDS if n not in _PLUMBING], n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(f"`git cvfs {c}`" for c in close) + "?"
        else:
            hint = "run `git cvfs --help` for the list of commands"
        raise _usage(f"{name!r} is not a git-cvfs command", hint)
    module = importlib.import_module(f"git_cvfs.commands.{COMMANDS[name][0]}")
    args = command_parser(name).parse_args(argv[1:])
    if getattr(args, "json", False):
        # Output for programs: no progress lines, even on a terminal (nor in the hooks it runs).
        os.environ["GIT_CVFS_NO_PROGRESS"] = "1"
    result: int = module.run(name, args)
    return result


# Run by git or by our hooks, not by people: left out of suggestions for a mistyped command.
_PLUMBING = ("filter-process", "clean", "smudge", "textconv", "merge-ref", "merge-index", "hook-impl")


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command, with its options (the man pages are made from these)."""
    module = importlib.import_module(f"git_cvfs.commands.{COMMANDS[name][0]}")
    parser = _parser(prog=f"git cvfs {name}", description=COMMANDS[name][1])
    module.add_arguments(name, parser)
    return parser


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
        code = _dispatch(args)
        sys.stdout.flush()  # here, where a reader that went away is caught below
        return code
    except CvfsError as exc:
        if os.environ.get("GIT_CVFS_TRACE", "") not in ("", "0"):
            _print_traceback()
        from git_cvfs import output

        output.error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped reading (`| head`): say nothing, and exit as git does when its
        # reader goes away (killed by SIGPIPE). Python's exit flush would complain otherwise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SIGPIPE
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_HINTS:
            return _internal_error(exc)
        from git_cvfs import output

        where = f": {exc.filename}" if exc.filename else ""
        output.error(f"{exc.strerror or exc}{where}", ENVIRONMENT_HINTS[exc.errno])
        return 1
    except Exception as exc:
        return _internal_error(exc)


def _internal_error(exc: Exception) -> int:
    """A bug: one line, the traceback and versions in a log whose path is printed, exit 3."""
    if os.environ.get("GIT_CVFS_TRACE", "") not in ("", "0"):
        _print_traceback()
    from git_cvfs import output
    from git_cvfs.errors import EXIT_INTERNAL

    try:
        where = _write_crash_log(exc)
        hint = f"this is a bug in git-cvfs: please report it with the log {where}"
    except OSError:
        hint = "this is a bug in git-cvfs: rerun with GIT_CVFS_TRACE=1 for the traceback, and report it"
    output.error(f"internal error: {type(exc).__name__}: {exc}", hint)
    return EXIT_INTERNAL


def _write_crash_log(exc: Exception) -> str:
    """<git dir>/cvfs/logs/ (outside a repository, the user's cache): what ran, on what, and
    where it broke; redacted like all output. The newest 20 logs are kept."""
    import platform
    import subprocess
    import time
    import traceback
    from importlib import metadata
    from pathlib import Path

    from git_cvfs.output import redact

    try:
        found = subprocess.run(
            ["git", "rev-parse", "--absolute-git-dir"], capture_output=True, text=True, timeout=10, check=False
        )
        git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found, git_version = None, "git not found"
    if found is not None and found.returncode == 0 and found.stdout.strip():
        logs = Path(found.stdout.strip()) / "cvfs" / "logs"
    else:
        logs = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "git-cvfs" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    versions = [f"git-cvfs {__version__}", f"python {platform.python_version()}", git_version, platform.platform()]
    for dist in ("boto3", "botocore", "azure-storage-blob", "filelock"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    text = "\n".join(
        [
            f"command: git-cvfs {' '.join(sys.argv[1:])}",
            f"cwd: {os.getcwd()}",
            *versions,
            "",
            "".join(traceback.format_exception(exc)),
        ]
    )
    path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(redact(text), encoding="utf-8")
    for old in sorted(logs.glob("crash-*.log"))[:-20]:
        old.unlink(missing_ok=True)
    return str(path)


def _print_traceback() -> None:
    import traceback

    from git_cvfs.output import redact

    sys.stderr.write(redact(traceback.format_exc()))
