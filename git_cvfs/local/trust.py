"""Which archive locations the user approved on this machine.

A repository is input anyone may have written, and `git clone` runs the filter
before its user has read a line of it. So an archive location that comes from the
committed `.cvfs/config` is used (with the user's credentials, or as a directory
to read) only once the user has approved it, in their own git config:

    git config --global --add cvfs.trusted 's3://team-data endpoint=https://minio.example'

A location is what decides where requests go and whose credentials sign them: the
scheme, the bucket (S3) or account and container (Azure), the endpoint and the AWS
profile; for a directory archive, the directory. Prefixes are not part of it, so
one approval covers every repository that uses that bucket. Settings the user
wrote themselves (local git config, environment) need no approval. The embedded
default archive is shared by every repository on this machine that names no
archive, so it is approved per repository (in that repository's .git/config).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from git_cvfs.errors import ConfigError, UsageError
from git_cvfs.local.config import TRUST_KEY, ArchiveSettings, Settings, default_archive_url
from git_cvfs.local.git import Repo, run_git

_ATTRS = ("endpoint", "profile")


class UntrustedArchiveError(ConfigError):
    """An archive location from the repository's committed settings that the user has not approved."""


def _word(text: str) -> str:
    """One whitespace-free word: a location is words separated by spaces."""
    return re.sub(r"\s", lambda m: f"%{ord(m.group()):02X}", text)


def _host(netloc: str) -> str:
    """The host (and port) of a URL's netloc, lower-case, without any user:password@."""
    return netloc.rpartition("@")[2].lower()


def _endpoint(url: str) -> str:
    """An endpoint as approvals compare it: no credentials, no query, lower-case scheme and host."""
    parts = urlsplit(url.strip())
    return _word(f"{parts.scheme.lower()}://{_host(parts.netloc)}{parts.path.rstrip('/')}")


def location_of(archive: ArchiveSettings) -> str:
    """The canonical text of where an archive is: what an approval names and what users are shown.

    Computed from the settings alone: nothing on disk or on the network is looked at."""
    parts = urlsplit(archive.url.strip())
    scheme = parts.scheme.lower()
    if scheme == "file":
        # Textual: `..` is kept, so no spelling of a path can pass for an approved one.
        path = re.sub("/+", "/", unquote(parts.path)).rstrip("/") or "/"
        text = Path(path).as_uri() if path.startswith("/") and not parts.netloc else _word(archive.url)
    else:
        host = _host(parts.netloc)
        if scheme == "az":
            container = parts.path.strip("/").split("/", 1)[0].lower()
            text = _word(f"az://{host}/{container}")
        else:
            text = _word(f"{scheme}://{host}")
    if archive.endpoint:
        text += f" endpoint={_endpoint(archive.endpoint)}"
    if archive.profile:
        text += f" profile={_word(archive.profile.strip())}"
    return text


def parse_location(text: str) -> str:
    """A location as a user typed it (`s3://bucket endpoint=URL profile=NAME`), made canonical."""
    tokens = text.split()
    if not tokens or "://" not in tokens[0]:
        raise UsageError(
            f"not an archive location: {text!r}",
            hint="write it as `s3://BUCKET [endpoint=URL] [profile=NAME]`, `az://ACCOUNT/CONTAINER "
            "[endpoint=URL]` or `file:///DIR`",
        )
    attrs: dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or key not in _ATTRS or not value:
            raise UsageError(
                f"unknown part {token!r} in the location {text!r}", hint="use endpoint=URL or profile=NAME"
            )
        attrs[key] = value
    scheme = urlsplit(tokens[0]).scheme.lower()
    if scheme not in ("s3", "az", "file"):
        raise UsageError(
            f"unsupported archive URL {tokens[0]!r}", hint="use file:///DIR, s3://BUCKET or az://ACCOUNT/CONTAINER"
        )
    return location_of(ArchiveSettings("primary", tokens[0], attrs.get("endpoint"), None, attrs.get("profile")))


def approved_locations(values: Iterable[str]) -> frozenset[str]:
    out = set()
    for value in values:
        try:
            out.add(parse_location(value))
        except UsageError:
            continue  # a value this version cannot read approves nothing
    return frozenset(out)


def is_default(archive: ArchiveSettings) -> bool:
    return urlsplit(archive.url).scheme == "file" and location_of(archive) == location_of(
        ArchiveSettings(archive.name, default_archive_url())
    )


def needs_approval(archive: ArchiveSettings) -> bool:
    """Settings the user wrote themselves are theirs to use; the repository's are not, and
    neither is the machine's default archive, which other repositories' objects share."""
    return archive.committed or is_default(archive)


def is_approved(settings: Settings, archive: ArchiveSettings) -> bool:
    return not needs_approval(archive) or location_of(archive) in settings.trusted


def shown(archive: ArchiveSettings) -> str:
    return f'archive "{archive.name}" at {location_of(archive)}'


def untrusted_error(archive: ArchiveSettings) -> UntrustedArchiveError:
    if is_default(archive) and not archive.committed:
        return UntrustedArchiveError(
            f"this repository names no archive and is not approved to use this machine's default archive "
            f"at {location_of(archive)}",
            hint="that archive holds the objects of every repository here that names none: if this is your "
            "repository, run `git cvfs trust` (or give it its own with `git cvfs init --archive URL`)",
        )
    return UntrustedArchiveError(
        f"{shown(archive)} is set by this repository's .cvfs/config and not approved on this machine",
        hint="git-cvfs uses no credentials and reads no directory there until you approve it: "
        "review .cvfs/config, then run `git cvfs trust`",
    )


_GIT_DIR_MARKERS = ("HEAD", "objects", "refs")


def _inside_git_dir(path: Path) -> Path | None:
    """The git directory (a .git, a bare repository, or its cvfs cache) that path is in, if any."""
    for candidate in (path, *path.parents):
        if candidate.name == ".git" or all((candidate / m).exists() for m in _GIT_DIR_MARKERS):
            return candidate
    return None


def forbidden_directory(archive: ArchiveSettings) -> str | None:
    """Why a committed file:// location may never be used, approved or not: the machine's default
    archive (other repositories' objects) and git directories (their caches) are not the
    repository's to name. None when the directory is not one of those."""
    if not archive.committed or urlsplit(archive.url).scheme != "file":
        return None
    where = Path(os.path.realpath(unquote(urlsplit(archive.url).path)))
    default = Path(os.path.realpath(unquote(urlsplit(default_archive_url()).path)))
    if where == default or default in where.parents:
        return "it is this machine's default archive, which holds other repositories' objects"
    git_dir = _inside_git_dir(where)
    if git_dir is not None:
        return f"it is inside the git directory {git_dir} (a repository's own cache)"
    return None


def approve(location: str, *, repo: Repo | None, local: bool) -> bool:
    """Record an approval; False when it was already there. Local approvals (the default
    archive) go into the repository's .git/config, all others into ~/.gitconfig."""
    scope = "--local" if local else "--global"
    if repo is None and local:
        raise UsageError("approving this location needs a repository", hint="run it inside the repository")
    cwd = repo.root if repo is not None else None
    current = run_git(["config", scope, "--get-all", TRUST_KEY], cwd=cwd, check=False).stdout.decode()
    if location in approved_locations(current.splitlines()):
        return False
    run_git(["config", scope, "--add", TRUST_KEY, location], cwd=cwd)
    return True


def revoke(location: str, *, repo: Repo | None) -> int:
    """Remove every approval of location from ~/.gitconfig and this repository's config; how many."""
    removed = 0
    for scope in ("--global", "--local"):
        if scope == "--local" and repo is None:
            continue
        cwd = repo.root if repo is not None else None
        current = run_git(["config", scope, "--get-all", TRUST_KEY], cwd=cwd, check=False).stdout.decode()
        for value in current.splitlines():
            if approved_locations([value]) == {location}:
                run_git(["config", scope, "--fixed-value", "--unset-all", TRUST_KEY, value], cwd=cwd)
                removed += 1
    return removed
