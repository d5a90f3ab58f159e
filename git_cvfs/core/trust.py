"""`git cvfs trust`: show the archive locations a repository names, and approve them on this machine."""

from __future__ import annotations

from dataclasses import dataclass, field

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import ConfigError
from git_cvfs.local.config import TRUST_KEY
from git_cvfs.local.git import Repo, run_git
from git_cvfs.local.trust import (
    approve,
    approved_locations,
    forbidden_directory,
    is_default,
    location_of,
    needs_approval,
    parse_location,
)


@dataclass
class TrustEntry:
    name: str
    location: str
    needs_approval: bool  # from .cvfs/config, or the machine's default archive
    approved: bool
    forbidden: str | None = None  # a committed location that may never be used, and why
    local: bool = False  # approved per repository (the default archive), not per machine

    @property
    def ok(self) -> bool:
        return self.forbidden is None and (self.approved or not self.needs_approval)

    def to_json(self) -> dict[str, object]:
        return {
            "archive": self.name,
            "location": self.location,
            "needs_approval": self.needs_approval,
            "approved": self.approved,
            "forbidden": self.forbidden,
            "scope": ("local" if self.local else "global") if self.needs_approval else None,
        }


@dataclass
class TrustReport:
    entries: list[TrustEntry] = field(default_factory=list)
    approved_now: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[TrustEntry]:
        return [e for e in self.entries if not e.ok and e.forbidden is None]

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "archives": [e.to_json() for e in self.entries],
            "approved_now": self.approved_now,
        }


def trust_report(ws: Workspace) -> TrustReport:
    report = TrustReport()
    for name in ws.archive_names:
        settings = ws.settings.archives[name]
        location = location_of(settings)
        report.entries.append(
            TrustEntry(
                name=name,
                location=location,
                needs_approval=needs_approval(settings),
                approved=location in ws.settings.trusted,
                forbidden=forbidden_directory(settings),
                local=is_default(settings),
            )
        )
    return report


def approve_pending(ws: Workspace, report: TrustReport) -> TrustReport:
    """Approve every location the report lists as pending (the user has seen the list)."""
    for entry in report.pending:
        if approve(entry.location, repo=ws.repo, local=entry.local):
            report.approved_now.append(entry.location)
        entry.approved = True
    return report


def approve_locations(texts: list[str], repo: Repo | None) -> list[str]:
    """Approve locations the user typed (for CI: before a clone); the canonical forms newly approved."""
    from git_cvfs.local.config import ArchiveSettings, default_archive_url

    default = location_of(ArchiveSettings("primary", default_archive_url()))
    done = []
    for text in texts:
        location = parse_location(text)
        if location == default:
            raise ConfigError(
                f"{location} is this machine's default archive, which every repository that names no archive shares",
                hint="approve it for one repository by running `git cvfs trust` inside it",
            )
        if approve(location, repo=repo, local=False):
            done.append(location)
    return done


def list_approvals(repo: Repo | None) -> list[tuple[str, str]]:
    """(scope, canonical location) of every approval git config holds, as git reads it here."""
    out = []
    for scope in ("--system", "--global", "--local"):
        if scope == "--local" and repo is None:
            continue
        proc = run_git(["config", scope, "--get-all", TRUST_KEY], cwd=repo.root if repo else None, check=False)
        for value in proc.stdout.decode("utf-8", "replace").splitlines():
            for location in approved_locations([value]):
                out.append((scope.lstrip("-"), location))
    return out
