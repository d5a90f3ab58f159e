"""Typed settings from .cvfs/config, then git config (cvfs.*), then GIT_CVFS_* environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from git_cvfs.errors import ConfigError
from git_cvfs.format.glob import match_any
from git_cvfs.format.size import parse_size
from git_cvfs.local.git import Repo, run_git

CONFIG_FILE = ".cvfs/config"
DEFAULT_MIN_SIZE = 1 << 20
DEFAULT_STREAM_MAX = 256 << 20
DEFAULT_CONCURRENCY = 8
# .cvfs/config is committed, so anyone may write it: a settings file is a few hundred bytes,
# and git config would hold a hostile 100 MB one in memory, and so would we.
MAX_CONFIG_BYTES = 64 << 10
TRUST_KEY = "cvfs.trusted"
# The attributes of an archive that decide where requests go and whose credentials sign them.
_LOCATION_KEYS = ("url", "endpoint", "profile")

_ARCHIVE_KEYS = {"url", "endpoint", "region", "profile"}
_PLAIN_KEYS = {
    "archive.mincopies",
    "scope.prefix",
    "scope.minsize",
    "fetch.include",
    "fetch.exclude",
    "smudge.streammax",
    "transfer.concurrency",
    "transfer.timeout",
    "transfer.attempts",
    "cache.keep",
    "worktree.budget",
}
# This machine's, never the repository's: how much disk its work tree may use.
_MACHINE_KEYS = {"worktree.budget"}
_MULTI_KEYS = {"scope.prefix", "fetch.include", "fetch.exclude"}
_ENV_KEYS = {
    "GIT_CVFS_SCOPE_MINSIZE": "scope.minsize",
    "GIT_CVFS_SMUDGE_STREAMMAX": "smudge.streammax",
    "GIT_CVFS_TRANSFER_CONCURRENCY": "transfer.concurrency",
    "GIT_CVFS_TRANSFER_TIMEOUT": "transfer.timeout",
    "GIT_CVFS_TRANSFER_ATTEMPTS": "transfer.attempts",
    "GIT_CVFS_CACHE_KEEP": "cache.keep",
    "GIT_CVFS_WORKTREE_BUDGET": "worktree.budget",
    "GIT_CVFS_FETCH_INCLUDE": "fetch.include",
    "GIT_CVFS_FETCH_EXCLUDE": "fetch.exclude",
    "GIT_CVFS_ARCHIVE_PRIMARY_URL": "archive.primary.url",
    "GIT_CVFS_ARCHIVE_SECONDARY_URL": "archive.secondary.url",
    "GIT_CVFS_ARCHIVE_MINCOPIES": "archive.mincopies",
}
_KEY_HINT = (
    "known keys: archive.<name>.url/endpoint/region/profile, archive.minCopies, scope.prefix, scope.minSize, "
    'scope "<prefix>".minSize, fetch.include, fetch.exclude, smudge.streamMax, '
    "transfer.concurrency, transfer.timeout, transfer.attempts, cache.keep, "
    "and (in git config only) worktree.budget"
)

# A request to an archive that has not answered in TIMEOUT seconds is abandoned, and each is
# sent at most ATTEMPTS times (transient errors back off well under a second): an archive
# that accepts connections and never answers is reported in about ATTEMPTS x TIMEOUT.
DEFAULT_TIMEOUT = 20
DEFAULT_ATTEMPTS = 3


class ArchiveSettings(NamedTuple):
    name: str
    url: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    # Where requests go or whose credentials sign them (url, endpoint, profile) came, even in
    # part, from the committed .cvfs/config: the user must approve it first (local/trust.py).
    committed: bool = False
    timeout: float = DEFAULT_TIMEOUT  # seconds a request may go unanswered (transfer.timeout)
    attempts: int = DEFAULT_ATTEMPTS  # tries per request (transfer.attempts)


class Settings(NamedTuple):
    archives: dict[str, ArchiveSettings]
    scope_prefixes: tuple[str, ...] = ()
    min_size: int = DEFAULT_MIN_SIZE
    min_size_by_prefix: tuple[tuple[str, int], ...] = ()
    fetch_include: tuple[str, ...] = ()
    fetch_exclude: tuple[str, ...] = ()
    stream_max: int = DEFAULT_STREAM_MAX
    concurrency: int = DEFAULT_CONCURRENCY
    cache_keep: bool = False
    min_copies: int = 1  # archives that must hold a verified copy before local bytes may go
    configured: bool = False
    skip_smudge: bool = False  # GIT_CVFS_SKIP_SMUDGE=1: every managed file stays a ref (read once)
    trusted: frozenset[str] = frozenset()  # approved archive locations, canonical (local/trust.py)
    worktree_budget: int | None = None  # bytes materialized files may use (cvfs.worktree.budget)

    @property
    def primary(self) -> ArchiveSettings:
        return self.archives["primary"]

    def min_size_for(self, path: str) -> int:
        best: tuple[int, int] | None = None
        for prefix, size in self.min_size_by_prefix:
            if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), size)
        return best[1] if best else self.min_size

    def in_scope(self, path: str) -> bool:
        """Where a raw file at or above minSize is refused at commit: scope.prefix, or (the safe
        default, as pre-commit's check-added-large-files) the whole repository."""
        if not self.scope_prefixes:
            return True
        return any(path.startswith(p) for p in self.scope_prefixes)

    def wants_fetch(self, path: str) -> bool:
        if self.skip_smudge:
            return False
        if self.fetch_include and not match_any(self.fetch_include, path):
            return False
        return not (self.fetch_exclude and match_any(self.fetch_exclude, path))


def _whole(raw: dict[str, list[tuple[str, str]]], key: str, default: int, low: int, high: int, unit: str) -> int:
    item = _one(raw, key)
    if item is None:
        return default
    if not item[0].isdigit() or not low <= int(item[0]) <= high:
        raise ConfigError(
            f"invalid {key} {item[0]!r} in {item[1]}", hint=f"use a whole number of {unit}, {low} to {high}"
        )
    return int(item[0])


def default_archive_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base, "git-cvfs", "archive").resolve().as_uri()


def _read_git_config(args: list[str], cwd: Path) -> list[tuple[str, str]]:
    proc = run_git(["config", "-z", *args], cwd=cwd, check=False)
    if proc.returncode not in (0, 1):  # 1: no matching keys
        detail = proc.stderr.decode(errors="replace").strip()
        raise ConfigError(f"cannot read configuration: {detail}", hint="fix the syntax of .cvfs/config")
    entries = []
    for item in proc.stdout.split(b"\0"):
        if not item:
            continue
        key, _, value = item.decode("utf-8", "surrogateescape").partition("\n")
        entries.append((key, value))
    return entries


def _split_key(key: str) -> tuple[str, str | None, str]:
    section, _, rest = key.partition(".")
    subsection, _, name = rest.rpartition(".")
    return section.lower(), (subsection or None), name.lower()


def _too_big(size: int) -> ConfigError:
    return ConfigError(
        f"{CONFIG_FILE} is {size} bytes; a settings file is never more than {MAX_CONFIG_BYTES}",
        hint=f"restore {CONFIG_FILE} from a commit you trust (git checkout <commit> -- {CONFIG_FILE})",
    )


def _committed_blob(repo: Repo, tree: str | None) -> tuple[str, int] | None:
    """(object name, size) of the committed .cvfs/config to read when the work tree has none:
    the one in `tree` (the tree a checkout is writing), else the index's (a sparse checkout
    leaves it out of the work tree), else HEAD's. None when there is none."""
    specs = [f"{tree}:{CONFIG_FILE}"] if tree else [f":{CONFIG_FILE}", f"HEAD:{CONFIG_FILE}"]
    proc = run_git(["cat-file", "--batch-check"], cwd=repo.root, input="\n".join(specs).encode() + b"\n", check=False)
    for spec, line in zip(specs, proc.stdout.decode().splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            return spec, int(parts[2])
    return None


def load_settings(repo: Repo, *, tree: str | None = None) -> Settings:
    """Settings from the committed .cvfs/config (the work tree's; or, when it has none, the
    index's or HEAD's; or with `tree`, that tree's), then git config, then the environment.
    A repository's settings never silently fall back to the machine's default archive while
    git still holds a .cvfs/config somewhere the work tree does not show."""
    raw: dict[str, list[tuple[str, str]]] = {}  # normalised key -> [(value, source)]
    cfg_file = repo.root / CONFIG_FILE
    layers: list[tuple[str, list[tuple[str, str]]]] = []
    configured = tree is None and cfg_file.is_file()
    if configured:
        size = cfg_file.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise _too_big(size)
        layers.append((CONFIG_FILE, _read_git_config(["-f", str(cfg_file), "--list"], repo.root)))
    elif (blob := _committed_blob(repo, tree)) is not None:
        spec, size = blob
        if size > MAX_CONFIG_BYTES:
            raise _too_big(size)
        configured = True
        layers.append((CONFIG_FILE, _read_git_config(["--blob", spec, "--list"], repo.root)))
    git_entries = []
    trusted: list[str] = []
    for key, value in _read_git_config(["--get-regexp", r"^cvfs\."], repo.root):
        if key == TRUST_KEY:  # approvals live in the user's own git config, never in .cvfs/config
            trusted.append(value)
        else:
            git_entries.append((key[len("cvfs.") :], value))
    layers.append(("git config", git_entries))
    for source, entries in layers:
        overridden: set[str] = set()
        for key, value in entries:
            norm = _normalise(key, source)
            if norm not in overridden:
                # A later layer replaces a key (all its values) from an earlier one.
                raw[norm] = []
                overridden.add(norm)
            raw[norm].append((value, source))
    for env_name, norm in _ENV_KEYS.items():
        if env_name in os.environ:
            values = os.environ[env_name].split(",") if norm in _MULTI_KEYS else [os.environ[env_name]]
            raw[norm] = [(v.strip(), env_name) for v in values if v.strip()]
    settings = _build(raw, configured)
    if trusted:
        from git_cvfs.local.trust import approved_locations  # only a repository with approvals pays for it

        settings = settings._replace(trusted=approved_locations(trusted))
    return settings


def _normalise(key: str, source: str) -> str:
    section, subsection, name = _split_key(key)
    if section == "archive" and subsection and name in _ARCHIVE_KEYS:
        return f"archive.{subsection}.{name}"
    if section == "scope" and subsection and name == "minsize":
        return f"scope.{subsection}.minsize"
    if subsection is None and f"{section}.{name}" in _PLAIN_KEYS:
        if f"{section}.{name}" in _MACHINE_KEYS and source == CONFIG_FILE:
            raise ConfigError(
                f"{key} is set in {CONFIG_FILE}, but how much disk a work tree may use is each machine's choice",
                hint=f"remove it from {CONFIG_FILE}; set it for this clone with `git config cvfs.{key} SIZE`",
            )
        return f"{section}.{name}"
    raise ConfigError(f"unknown configuration key {key!r} in {source}", hint=_KEY_HINT)


def _one(raw: dict[str, list[tuple[str, str]]], key: str) -> tuple[str, str] | None:
    values = raw.get(key)
    return values[-1] if values else None


def _build(raw: dict[str, list[tuple[str, str]]], configured: bool) -> Settings:
    archives: dict[str, dict[str, str]] = {}
    committed: set[str] = set()  # archives with a location attribute from .cvfs/config
    by_prefix: list[tuple[str, int]] = []
    for key, values in raw.items():
        if key == "archive.mincopies":
            continue
        if key.startswith("archive."):
            name, attr = key[len("archive.") :].rsplit(".", 1)
            archives.setdefault(name, {})[attr] = values[-1][0]
            if attr in _LOCATION_KEYS and values[-1][1] == CONFIG_FILE:
                committed.add(name)
        elif key.startswith("scope.") and key.endswith(".minsize") and key != "scope.minsize":
            prefix = key[len("scope.") : -len(".minsize")]
            value, source = values[-1]
            try:
                by_prefix.append((prefix, parse_size(value, what=f'scope "{prefix}".minSize')))
            except ConfigError as exc:
                raise ConfigError(f"{exc.message} in {source}", exc.hint) from None
    for name, attrs in archives.items():
        if name not in ("primary", "secondary"):
            raise ConfigError(
                f"unknown archive name {name!r}", hint='name archives "primary" and, optionally, "secondary"'
            )
        if "url" not in attrs:
            raise ConfigError(f'archive "{name}" has no url', hint=f"git config -f .cvfs/config archive.{name}.url URL")
    if "primary" not in archives:
        if "secondary" in archives:
            raise ConfigError('archive "secondary" is set without a primary', hint="set archive.primary.url")
        archives["primary"] = {"url": default_archive_url()}
    timeout = _whole(raw, "transfer.timeout", DEFAULT_TIMEOUT, 1, 3600, "seconds")
    attempts = _whole(raw, "transfer.attempts", DEFAULT_ATTEMPTS, 1, 20, "tries")
    settings_archives = {
        name: ArchiveSettings(
            name,
            a["url"],
            a.get("endpoint"),
            a.get("region"),
            a.get("profile"),
            committed=name in committed,
            timeout=timeout,
            attempts=attempts,
        )
        for name, a in archives.items()
    }

    def size(key: str, default: int) -> int:
        item = _one(raw, key)
        if item is None:
            return default
        try:
            return parse_size(item[0], what=key)
        except ConfigError as exc:
            raise ConfigError(f"{exc.message} in {item[1]}", exc.hint) from None

    concurrency = DEFAULT_CONCURRENCY
    if (item := _one(raw, "transfer.concurrency")) is not None:
        if not item[0].isdigit() or not 1 <= int(item[0]) <= 256:
            raise ConfigError(
                f"invalid transfer.concurrency {item[0]!r} in {item[1]}", hint="use a whole number from 1 to 256"
            )
        concurrency = int(item[0])
    min_copies = 1
    if (item := _one(raw, "archive.mincopies")) is not None:
        if not item[0].isdigit() or not 1 <= int(item[0]) <= len(settings_archives):
            raise ConfigError(
                f"invalid archive.minCopies {item[0]!r} in {item[1]}",
                hint=f"a whole number from 1 to the number of archives configured ({len(settings_archives)})",
            )
        min_copies = int(item[0])
    cache_keep = False
    if (item := _one(raw, "cache.keep")) is not None:
        lowered = item[0].lower()
        if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ConfigError(f"invalid cache.keep {item[0]!r} in {item[1]}", hint="use true or false")
        cache_keep = lowered in ("true", "yes", "on", "1")
    prefixes = tuple(v.strip().lstrip("/") for v, _ in raw.get("scope.prefix", []))
    return Settings(
        archives=settings_archives,
        scope_prefixes=prefixes,
        min_size=size("scope.minsize", DEFAULT_MIN_SIZE),
        min_size_by_prefix=tuple(by_prefix),
        fetch_include=tuple(v for v, _ in raw.get("fetch.include", [])),
        fetch_exclude=tuple(v for v, _ in raw.get("fetch.exclude", [])),
        stream_max=size("smudge.streammax", DEFAULT_STREAM_MAX),
        concurrency=concurrency,
        cache_keep=cache_keep,
        min_copies=min_copies,
        configured=configured,
        skip_smudge=os.environ.get("GIT_CVFS_SKIP_SMUDGE") == "1",
        worktree_budget=size("worktree.budget", -1) if "worktree.budget" in raw else None,
    )
