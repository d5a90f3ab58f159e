"""Paths a user names: each must match a file git-cvfs manages, as git's own pathspecs must
match a file git knows. A typo, or a path inside a submodule, is an error naming it, never
"0 files, done"."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.local.git import split_z

_GLOB = set("*?[")


def work_from_top(ws: Workspace, specs: Sequence[str]) -> list[str]:
    """The user's pathspecs, which name paths from the current directory as git's do, made
    relative to the top of the work tree; then this process moves there, where git is run
    and where every path git-cvfs reports starts. `git cvfs ensure a.bin` in data/ is
    data/a.bin, not a.bin at the top (which would match nothing, or another file)."""
    root = os.path.realpath(ws.repo.root)
    here = os.path.realpath(os.getcwd())
    out = []
    for spec in specs:
        out.append(spec if here == root else _from(here, root, spec))
    os.chdir(root)
    return out


# git's short pathspec magic (`:!data/x`, `:^x`, `:/x`), by the character that writes it.
_SHORT_MAGIC = {"/": "top", "!": "exclude", "^": "exclude"}


def _magic(spec: str) -> tuple[list[str] | None, str]:
    """(the pathspec's magic words, the path after them), as git reads them: `:(a,b)path`
    long, `:!path` or `:/!:path` short; None for a plain path."""
    if not spec.startswith(":"):
        return None, spec
    if spec.startswith(":("):
        magic, _, rest = spec[2:].partition(")")
        return [m.strip() for m in magic.split(",") if m.strip()], rest
    i = 1
    while i < len(spec) and spec[i] in _SHORT_MAGIC:
        i += 1
    words = [_SHORT_MAGIC[c] for c in spec[1:i]]
    return words, spec[i + 1 :] if spec[i : i + 1] == ":" else spec[i:]


def _from(here: str, root: str, spec: str) -> str:
    words, rest = _magic(spec)
    if words is None:
        return _join(here, root, spec, spec)
    if "top" in words:
        return spec  # git's "from the top" already
    path = _join(here, root, rest, spec)
    return f":({','.join(dict.fromkeys(words))}){path}" if words else path  # short forms written long


def _join(here: str, root: str, rel: str, spec: str) -> str:
    path = os.path.relpath(os.path.normpath(os.path.join(here, rel)), root)
    if path == ".." or path.startswith("../"):
        raise UsageError(f"{spec}: outside the repository at {root}", hint="name paths inside the work tree")
    if path == ".":
        return "."
    return path + ("/" if rel.endswith("/") else "")


def _repo_relative(ws: Workspace, spec: str) -> tuple[str, bool]:
    """(the spec as a path from the top of the work tree, whether it is a glob)."""
    words, rest = _magic(spec)
    glob = "literal" not in (words or []) and bool(_GLOB & set(rest))
    if words is not None and "top" in words:
        return rest.strip("/"), glob
    rel = os.path.relpath(os.path.join(os.getcwd(), rest), ws.repo.root)
    return ("" if rel == "." else rel), glob


def _excludes(spec: str) -> bool:
    words, _ = _magic(spec)
    return words is not None and "exclude" in words


def submodules(ws: Workspace) -> list[str]:
    out = ws.repo.git("ls-files", "-s", "-z", "--full-name")
    return [rec.partition("\t")[2] for rec in split_z(out) if rec.startswith("160000 ")]


def require_matches(ws: Workspace, pathspecs: Sequence[str], found: Iterable[str], command: str) -> None:
    """Raise for the first pathspec inside a submodule, then for those matching none of `found`
    (the paths the command would act on, from the top of the work tree)."""
    if not pathspecs:
        return
    paths = sorted(found)
    subs = submodules(ws)
    unmatched = []
    excluding = any(_excludes(spec) for spec in pathspecs)
    for spec in pathspecs:
        if _excludes(spec):  # takes paths away: matching nothing is no mistake
            continue
        rel, glob = _repo_relative(ws, spec)
        sub = next((s for s in subs if rel == s or rel.startswith(s + "/")), None)
        if sub is not None:
            inner = rel[len(sub) + 1 :] or "."
            raise UsageError(
                f"{spec}: it is inside the submodule {sub}; git-cvfs works in one repository at a time",
                hint=f"run it in the submodule: (cd {sub} && git cvfs {command} {inner})",
            )
        if not _matches(rel, glob, paths):
            if excluding and (glob or os.path.lexists(os.path.join(ws.repo.root, rel))):
                continue  # it named something, and an exclusion took all of it away (found is what is left)
            unmatched.append(spec)
    if unmatched:
        names = ", ".join(repr(s) for s in unmatched)
        raise CvfsError(
            f"pathspec {names} did not match any file git-cvfs manages",
            hint="check the spelling; `git cvfs ls-files` lists the managed files",
        )


def selector(ws: Workspace, pathspecs: Sequence[str]) -> Callable[[str], bool]:
    """Whether these pathspecs (as work_from_top left them) pick a path (from the top), for
    paths git is not asked to match: one that includes it (or none that includes anything),
    and none that excludes it. The pathspecs are read once, not once per path."""
    read = [(*_repo_relative(ws, spec), _excludes(spec)) for spec in pathspecs]
    including = [(rel, glob) for rel, glob, exclude in read if not exclude]
    excluding = [(rel, glob) for rel, glob, exclude in read if exclude]

    def picks(path: str) -> bool:
        hit = partial(_matches, paths=[path])
        if including and not any(hit(rel, glob) for rel, glob in including):
            return False
        return not any(hit(rel, glob) for rel, glob in excluding)

    return picks


def _matches(rel: str, glob: bool, paths: Sequence[str]) -> bool:
    if rel in ("", "."):
        return bool(paths)
    if glob:
        return any(fnmatch.fnmatchcase(p, rel) or fnmatch.fnmatchcase(p, rel.rstrip("/") + "/*") for p in paths)
    prefix = rel.rstrip("/") + "/"
    return any(p == rel or p.startswith(prefix) for p in paths)
