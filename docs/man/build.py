"""Write the man pages, docs/man/*.1, from the commands' own parsers (argparse-manpage).

    .venv/bin/python docs/man/build.py

The test suite checks that the committed pages are what this writes, so an option added to a
command without running this fails a test. pip installs the pages into share/man/man1
(pyproject.toml), where `man`, `git help cvfs` and `git cvfs --help` find them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from argparse_manpage.manpage import Manpage

from git_cvfs import __version__
from git_cvfs.cli import _PLUMBING, COMMANDS, command_parser, top_parser

HERE = Path(__file__).resolve().parent
SEE = "Guides for each workflow, with real commands and output, are in the docs/ directory of git-cvfs."
EXIT = (
    ".TP\n0\nsuccess: everything asked for was done, or the check found nothing\n"
    ".TP\n1\nthe command failed, or a check found something (a ref still in place, drift, "
    "bytes that are nowhere else); stderr says what, with a hint\n"
    ".TP\n2\na usage or configuration error: an unknown option, a bad setting\n"
    ".TP\n3\na bug in git-cvfs: the traceback and versions are in a log under .git/cvfs/logs, whose path is printed\n"
    ".TP\n130\ninterrupted\n"
)
ENVIRONMENT = (
    ".TP\nGIT_CVFS_TRACE\n1 traces the filter's requests and every archive call to stderr; "
    "an absolute path appends the trace to that file\n"
    ".TP\nGIT_CVFS_NO_PROGRESS\n1 turns progress lines off (they are shown on a terminal only)\n"
)


def pages() -> dict[str, str]:
    out = {}
    top = top_parser()
    commands = "".join(
        f".TP\n\\fBgit cvfs {name}\\fR\n{summary}\n" for name, (_, summary) in COMMANDS.items() if name not in _PLUMBING
    )
    plumbing = "".join(f".TP\n\\fBgit cvfs {name}\\fR\n{COMMANDS[name][1]}\n" for name in _PLUMBING)
    man = Manpage(top)
    man.add_section("commands", "=", commands)
    man.add_section("run by git", "=", plumbing)
    see = ", ".join(f"\\fBgit-cvfs-{n}\\fR(1)" for n in COMMANDS if n not in _PLUMBING)
    man.add_section("exit status", "=", EXIT)
    man.add_section("environment", "=", ENVIRONMENT)
    man.add_section("see also", "=", f"{see}, \\fBgitattributes\\fR(5), \\fBgithooks\\fR(5)\n.PP\n{SEE}")
    out["git-cvfs.1"] = page_of(man, "git-cvfs", "large files in git as tiny refs, their bytes in archives you own")
    for name, (_, summary) in COMMANDS.items():
        parser = command_parser(name)
        m = Manpage(parser)
        m.add_section("exit status", "=", EXIT)
        m.add_section("see also", "=", f"\\fBgit-cvfs\\fR(1)\n.PP\n{SEE}")
        out[f"git-cvfs-{name}.1"] = page_of(m, f"git-cvfs-{name}", summary)
    return out


def page_of(man: Manpage, name: str, description: str) -> str:
    man.prog = name  # the page's title and NAME: git-cvfs-ensure, as git's own pages are named
    man.description = description
    man.source = f"git-cvfs {__version__}"
    man.manual = "git-cvfs manual"
    man.date = ""  # pages change with the code, not with the day they were built
    return str(man)


def main() -> int:
    wanted = pages()
    for old in HERE.glob("*.1"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (HERE / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} man pages into {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
