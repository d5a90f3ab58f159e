"""install / uninstall / init / track / untrack."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from git_cvfs.core.plumbing.hook_shims import executable, install_hooks, uninstall_hooks
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.inventory import SHARD_DIR
from git_cvfs.local.config import CONFIG_FILE, ArchiveSettings, default_archive_url
from git_cvfs.local.git import Repo, run_git
from git_cvfs.local.worktree import write_bytes

# merge=binary: git's own driver keeps our side on a conflict, and honours -X ours / -X theirs
# (a custom driver is never told about them). Lines written with merge=cvfs still work.
ATTRS = "filter=cvfs diff=cvfs merge=binary -text"
INDEX_ATTRS_LINE = f"{SHARD_DIR}/*.jsonl merge=cvfs-index -text"


# git runs textconv once per version a diff shows: a shell script answers refs itself.
TEXTCONV = Path(__file__).parent.parent / "shims" / "textconv.sh"


def filter_config(exe: str) -> dict[str, str]:
    q = shlex.quote(exe)
    return {
        "filter.cvfs.process": f"{q} filter-process",
        "filter.cvfs.clean": f"{q} clean -- %f",
        "filter.cvfs.smudge": f"{q} smudge -- %f",
        "filter.cvfs.required": "true",
        "diff.cvfs.textconv": f"sh {shlex.quote(str(TEXTCONV))} {q}",
        "merge.cvfs.name": "git-cvfs managed file (conflicts keep ours)",
        "merge.cvfs.driver": f"{q} merge-ref %O %A %B %P",
        "merge.cvfs-index.name": "git-cvfs inventory shard",
        "merge.cvfs-index.driver": f"{q} merge-index %O %A %B %P",
    }


@dataclass
class InstallReport:
    scope: str
    config_set: dict[str, str] = field(default_factory=dict)
    hooks_dir: Path | None = None
    hooks: list[str] = field(default_factory=list)


def _scope_args(scope: str, repo: Repo | None) -> list[str]:
    if scope == "local" and repo is None:
        raise UsageError("--local needs a repository", hint="cd into a repository, or use --global")
    return [f"--{scope}"]


def install(*, scope: str, repo: Repo | None) -> InstallReport:
    exe = executable()
    report = InstallReport(scope)
    args = _scope_args(scope, repo)
    cwd = repo.root if repo else None
    for key, value in filter_config(exe).items():
        run_git(["config", *args, key, value], cwd=cwd)
        report.config_set[key] = value
    # Set by earlier versions: it made `git grep -I` skip small text files kept as plain blobs.
    run_git(["config", *args, "--unset-all", "diff.cvfs.binary"], cwd=cwd, check=False)
    if repo is not None:
        directory, changes = install_hooks(repo, exe=exe)
        report.hooks_dir = directory
        report.hooks = [c.describe(directory) for c in changes]
    return report


def uninstall(*, scope: str, repo: Repo | None) -> InstallReport:
    report = InstallReport(scope)
    args = _scope_args(scope, repo)
    cwd = repo.root if repo else None
    for section in ("filter.cvfs", "diff.cvfs", "merge.cvfs", "merge.cvfs-index"):
        proc = run_git(["config", *args, "--remove-section", section], cwd=cwd, check=False)
        if proc.returncode == 0:
            report.config_set[section] = "removed"
    if repo is not None:
        directory, changes = uninstall_hooks(repo)
        report.hooks_dir = directory
        report.hooks = [c.describe(directory) for c in changes]
    return report


def _ensure_line(path: Path, root: Path, line: str) -> bool:
    rel = str(path.relative_to(root))
    text = path.read_text() if path.exists() else ""
    if line in text.splitlines():
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    write_bytes(root, rel, (text + line + "\n").encode(), create_dirs=True)
    return True


@dataclass
class InitReport:
    created: list[str] = field(default_factory=list)
    archive_url: str = ""
    approved: str | None = None  # the location approved on this machine by this init
    location: str | None = None  # what the probe of a typed archive found (or created)
    machine_local: bool = False  # the embedded default: teammates cannot reach it
    install: InstallReport | None = None


def init(
    repo: Repo,
    *,
    archive_url: str | None,
    endpoint: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    skill: bool = False,
    create: bool = False,
    probe: bool = True,
) -> InitReport:
    """Scaffold .cvfs/ and .gitattributes and install. An archive the user names here is
    approved on this machine (what they typed is what they trust); with none named and none
    committed, this repository is approved to use the machine's default archive."""
    from git_cvfs.local.trust import approve, is_default, location_of

    report = InitReport()
    config = repo.root / CONFIG_FILE
    typed = None
    if archive_url is not None:
        _check_archive_url(archive_url)
        typed = ArchiveSettings("primary", archive_url, endpoint, region, profile)
        if is_default(typed):
            raise UsageError(
                f"{archive_url} is this machine's default archive",
                hint="leave out --archive to use it; a committed config may not name it",
            )
        report.location = _probe_typed(repo, typed, create=create, probe=probe)
    elif endpoint or region or profile:
        raise UsageError("--endpoint, --region and --profile go with --archive", hint="git cvfs init --archive URL ...")
    if skill:  # after every check: a refused init leaves nothing behind
        report.created += write_skill(repo)
    attrs = [("url", archive_url), ("endpoint", endpoint), ("region", region), ("profile", profile)]
    if not config.exists():
        lines = ["# git-cvfs settings, committed with the repository. See docs/configuration.md."]
        if archive_url:
            lines += ['[archive "primary"]'] + [f"\t{key} = {value}" for key, value in attrs if value]
        lines += ["[scope]", "\tminSize = 1MB"]
        write_bytes(repo.root, CONFIG_FILE, ("\n".join(lines) + "\n").encode(), create_dirs=True)
        report.created.append(CONFIG_FILE)
    elif archive_url:
        # The archive is what was typed, whole: an endpoint or profile left from before would
        # send requests somewhere the user did not name.
        run_git(["config", "-f", str(config), "--remove-section", "archive.primary"], cwd=repo.root, check=False)
        for key, value in attrs:
            if value:
                run_git(["config", "-f", str(config), f"archive.primary.{key}", value], cwd=repo.root)
    configured = _configured_url(repo)
    report.archive_url = archive_url or configured or default_archive_url()
    if typed is not None:
        approve(location_of(typed), repo=repo, local=False)
        report.approved = location_of(typed)
    elif configured is None:
        default = ArchiveSettings("primary", default_archive_url())
        approve(location_of(default), repo=repo, local=True)
        report.approved = location_of(default)
    if typed is None and configured is None:
        # The default is created on demand; a directory the user named exists already (probed
        # above, or made by --create); never one a committed config names.
        Path(report.archive_url[len("file://") :]).mkdir(parents=True, exist_ok=True)
        report.machine_local = True
    if _ensure_line(repo.root / ".cvfs" / ".gitignore", repo.root, "secrets.env"):
        report.created.append(".cvfs/.gitignore")
    if _ensure_line(repo.root / ".gitattributes", repo.root, INDEX_ATTRS_LINE):
        report.created.append(".gitattributes")
    report.install = install(scope="local", repo=repo)
    return report


def _probe_typed(repo: Repo, typed: ArchiveSettings, *, create: bool, probe: bool) -> str | None:
    """The archive the user typed must be whole (a bucket, a container) and exist, unless they
    asked to create it: a typo found now costs nothing; found at the first push, it costs a
    team's afternoon. The user named it, so it may be reached with their credentials."""
    from git_cvfs.errors import ArchiveError
    from git_cvfs.local.secrets import load_secrets
    from git_cvfs.remote.archive import open_archive

    archive = open_archive(typed)  # a URL without its bucket or container is refused here
    if not probe:
        return None
    load_secrets(repo)
    try:
        return archive.probe(create=create)
    except ArchiveError as exc:
        raise ArchiveError(
            f"{exc.message}; nothing was changed",
            hint=f"check the URL and endpoint; `git cvfs init --archive {typed.url} --create` creates it, "
            "and --no-probe sets it up without looking",
        ) from None


SKILL_TARGETS = (".claude/skills/git-cvfs/SKILL.md", ".cursor/rules/git-cvfs.mdc")


def write_skill(repo: Repo) -> list[str]:
    """The agent skill file, for Claude-style skills and Cursor rules alike (same text)."""
    from importlib import resources

    text = resources.files("git_cvfs").joinpath("skill.md").read_bytes()
    cursor = text.replace(b"name: git-cvfs\n", b"alwaysApply: false\n", 1)
    for target, body in zip(SKILL_TARGETS, (text, cursor), strict=True):
        write_bytes(repo.root, target, body, create_dirs=True)
    return list(SKILL_TARGETS)


def _configured_url(repo: Repo) -> str | None:
    proc = run_git(["config", "-f", str(repo.root / CONFIG_FILE), "archive.primary.url"], cwd=repo.root, check=False)
    return proc.stdout.decode().strip() or None


def _check_archive_url(url: str) -> None:
    if not url.startswith(("file:///", "s3://", "az://")):
        raise UsageError(
            f"unsupported archive URL {url!r}",
            hint="use file:///absolute/dir, s3://bucket/prefix or az://account/container/prefix",
        )


def _attr_line(pattern: str) -> str:
    if not pattern or any(c.isspace() for c in pattern) or pattern.startswith("#"):
        raise UsageError(
            f"cannot track {pattern!r}", hint="give a gitattributes pattern without spaces, e.g. 'data/**'"
        )
    return f"{pattern} {ATTRS}"


def _matches_no_file(repo: Repo, pattern: str) -> UsageError | None:
    """Why a pattern written to .gitattributes would match no file (track would then change
    nothing that matters, and say it had), or None. Attributes do not pass from a directory
    to what is in it: `data` or `data/` given for a directory match none of its files."""
    if pattern.startswith("!"):
        return UsageError(
            f"cannot track {pattern!r}: git ignores negative patterns in .gitattributes",
            hint="track what should be managed; a file a tracked pattern covers stays plain below scope.minSize",
        )
    parts = pattern.strip("/").split("/")
    if "." in parts or ".." in parts:
        return UsageError(
            f"cannot track {pattern!r}: git matches attribute patterns against paths, which have no . or .. in them",
            hint="write the path from the repository's top, e.g. 'data/**'",
        )
    directory = None
    if not any(c in pattern for c in "*?[\\"):
        root = repo.root.resolve()
        for base in (root, Path.cwd()):
            where = (base / pattern.strip("/")).resolve()
            if where.is_dir() and (where == root or root in where.parents):
                directory = where.relative_to(root).as_posix()
                break
    if directory is not None or pattern.endswith("/"):
        top = directory if directory is not None else pattern.strip("/")
        suggested = f"{top}/**" if top not in ("", ".") else "**"
        return UsageError(
            f"cannot track {pattern!r}: it names a directory, and .gitattributes patterns do not reach the files in one",
            hint=f"track everything under it with: git cvfs track {shlex.quote(suggested)}",
        )
    return None


def track(repo: Repo, patterns: list[str]) -> list[tuple[str, bool]]:
    for pattern in patterns:  # all checked before any is written
        _attr_line(pattern)
        if (problem := _matches_no_file(repo, pattern)) is not None:
            raise problem
    results = []
    for pattern in patterns:
        changed = _ensure_line(repo.root / ".gitattributes", repo.root, _attr_line(pattern))
        results.append((pattern, changed))
    return results


def untrack(repo: Repo, patterns: list[str]) -> list[str]:
    """Remove each pattern's filter=cvfs line from .gitattributes. A pattern no such line has
    (a typo, or one never tracked) is an error, and then nothing changes, as `git rm` of a
    path it does not know: the user would otherwise believe the typo untracked something."""
    path = repo.root / ".gitattributes"
    lines = path.read_text().splitlines() if path.exists() else []

    def ours(entry: str) -> str | None:
        fields = entry.split()
        return fields[0] if fields and "filter=cvfs" in fields[1:] else None

    tracked = [p for p in (ours(entry) for entry in lines) if p is not None]
    for pattern in patterns:
        _attr_line(pattern)  # refuses what track would have refused
    unknown = [pattern for pattern in patterns if pattern not in tracked]
    if unknown:
        listed = ", ".join(shlex.quote(p) for p in dict.fromkeys(tracked)) or "none"
        raise CvfsError(
            f"not a tracked pattern: {', '.join(shlex.quote(p) for p in unknown)}; nothing was untracked",
            hint=f"tracked patterns (.gitattributes): {listed}",
        )
    lines = [entry for entry in lines if ours(entry) not in patterns]
    write_bytes(repo.root, ".gitattributes", ("\n".join(lines) + "\n").encode() if lines else b"")
    return list(dict.fromkeys(patterns))
