"""Paths a user names: each must match a file git-cvfs manages, as git's own pathspecs must
match a file git knows. A typo, or a path inside a submodule, is an error naming it, never
"0 files, done"."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.glob import wildmatch_regex
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


class _Spec(NamedTuple):
    """A pathspec as a path from the top of the work tree, and how git matches it: a path
    names itself and everything under it; wildcards (`*?[`) match as fnmatch does, `*`
    crossing `/`, unless `:(glob)` asks for wildmatch, where `*` stays within a directory
    and `**` spans them; `:(icase)` ignores case; `:(literal)` has no wildcards;
    `:(attr:...)` also asks for attributes (see _attr_requirements)."""

    rel: str
    glob: bool
    pattern: re.Pattern[str] | None  # for a glob: the whole path must match it
    attrs: tuple[tuple[str, str], ...] = ()  # (attribute, the value check-attr must give)


def _attr_requirements(words: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`:(attr:a -b c=v !d)`, as git reads it: a set, b unset, c set to v, d unspecified; every
    one must hold. As (attribute, what `git check-attr` says for it)."""
    out = []
    for word in words:
        if not word.startswith("attr:"):
            continue
        for item in word[len("attr:") :].split():
            if item.startswith("!"):
                out.append((item[1:], "unspecified"))
            elif item.startswith("-"):
                out.append((item[1:], "unset"))
            elif "=" in item:
                name, _, value = item.partition("=")
                out.append((name, value))
            else:
                out.append((item, "set"))
    return tuple(out)


def _repo_relative(ws: Workspace, spec: str) -> _Spec:
    words, rest = _magic(spec)
    words = words or []
    return _by_path(ws, words, rest)._replace(attrs=_attr_requirements(words))


def _by_path(ws: Workspace, words: list[str], rest: str) -> _Spec:
    glob = "literal" not in words and bool(_GLOB & set(rest))
    if "top" in words:
        rel = rest.strip("/")
    else:
        rel = os.path.relpath(os.path.join(os.getcwd(), rest), ws.repo.root)
        rel = "" if rel == "." else rel
    flags = re.IGNORECASE if "icase" in words else 0
    if not glob:
        # a path (and what is under it); with icase, any case of it
        prefix = re.escape(rel.rstrip("/"))
        return _Spec(rel, False, re.compile(f"{prefix}(?:/.*)?", flags | re.DOTALL) if flags and rel else None)
    if "glob" in words:
        # a trailing slash names directories only, and so no file (git's ls-files lists none)
        body = None if rest.endswith("/") else wildmatch_regex(rel)
        return _Spec(rel, True, re.compile(body if body is not None else "(?!)", flags | re.DOTALL))
    # git's default: fnmatch without FNM_PATHNAME, of the path or of a leading directory
    whole, under = (fnmatch.translate(p) for p in (rel.rstrip("/"), rel.rstrip("/") + "/*"))
    return _Spec(rel, True, re.compile(f"(?:{whole})|(?:{under})", flags))


def without_attr(pathspecs: Sequence[str]) -> tuple[list[str], bool]:
    """The pathspecs for git, with `:(attr:...)` taken out (an exclusion that asks for
    attributes is dropped), and whether any asked: git then lists more, and `selected`
    picks among that. git 2.39's ls-files matches attributes against the wrong path once
    a pathspec names a directory (`:(attr:a)data/sub` lists nothing, where `git diff` lists
    the files under data/sub with attribute a)."""
    out, any_attr = [], False
    for spec in pathspecs:
        words, rest = _magic(spec)
        if words is None or not any(word.startswith("attr:") for word in words):
            out.append(spec)
            continue
        any_attr = True
        if "exclude" not in words:
            out.append(f":({','.join(word for word in words if not word.startswith('attr:'))}){rest}")
    return out, any_attr


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
        read = _repo_relative(ws, spec)
        rel, glob = read.rel, read.glob
        sub = next((s for s in subs if rel == s or rel.startswith(s + "/")), None)
        if sub is not None:
            inner = rel[len(sub) + 1 :] or "."
            raise UsageError(
                f"{spec}: it is inside the submodule {sub}; git-cvfs works in one repository at a time",
                hint=f"run it in the submodule: (cd {sub} && git cvfs {command} {inner})",
            )
        if not _matches(read, paths):
            if excluding and (glob or os.path.lexists(os.path.join(ws.repo.root, rel))):
                continue  # it named something, and an exclusion took all of it away (found is what is left)
            unmatched.append(spec)
    if unmatched:
        names = ", ".join(repr(s) for s in unmatched)
        raise CvfsError(
            f"pathspec {names} did not match any file git-cvfs manages",
            hint="check the spelling; `git cvfs ls-files` lists the managed files",
        )


def selected(ws: Workspace, pathspecs: Sequence[str], paths: Iterable[str]) -> list[str]:
    """The paths (from the top) these pathspecs (as work_from_top left them) pick, for paths
    git is not asked to match: one that includes a path (or none that includes anything),
    and none that excludes it. Attributes `:(attr:...)` asks for are looked up in one
    `git check-attr` call per attribute, for the paths that match by name."""
    including = [_repo_relative(ws, spec) for spec in pathspecs if not _excludes(spec)]
    excluding = [_repo_relative(ws, spec) for spec in pathspecs if _excludes(spec)]
    by_name = [p for p in paths if not including or any(_matches(spec, [p]) for spec in including)]
    names = sorted({name for spec in including + excluding for name, _ in spec.attrs})
    values = {name: ws.repo.attr_values(name, by_name) for name in names}

    def hit(spec: _Spec, path: str) -> bool:
        return _matches(spec, [path]) and all(values[name].get(path) == value for name, value in spec.attrs)

    return [
        p
        for p in by_name
        if (not including or any(hit(spec, p) for spec in including)) and not any(hit(spec, p) for spec in excluding)
    ]


def _matches(spec: _Spec, paths: Sequence[str]) -> bool:
    if spec.rel in ("", "."):
        return bool(paths)
    if spec.pattern is not None:
        return any(spec.pattern.fullmatch(p) for p in paths)
    prefix = spec.rel.rstrip("/") + "/"
    return any(p == spec.rel or p.startswith(prefix) for p in paths)
