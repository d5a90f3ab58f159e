"""`git cvfs doctor`: one line per check of install, config, credentials and archive access."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from git_cvfs import __version__
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.plumbing.hook_shims import HOOKS, hook_problems, layout
from git_cvfs.errors import CvfsError
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.local.git import run_git


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "hint": self.hint}


def _guard(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except CvfsError as exc:
        return Check(name, False, exc.message, exc.hint)
    except Exception as exc:  # a check must report, never crash the others
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _filter_config(ws: Workspace) -> Check:
    proc = run_git(["config", "filter.cvfs.process"], cwd=ws.repo.root, check=False)
    value = proc.stdout.decode().strip()
    if not value:
        return Check("filter", False, "filter.cvfs.process is not set", "run `git cvfs install --local`")
    exe = shlex.split(value)[0]
    if os.path.isabs(exe) and not os.access(exe, os.X_OK):
        return Check(
            "filter", False, f"filter.cvfs.process runs {exe}, which is missing", "run `git cvfs install --local` again"
        )
    required = (
        run_git(["config", "--bool", "filter.cvfs.required"], cwd=ws.repo.root, check=False).stdout.decode().strip()
    )
    if required != "true":
        return Check("filter", False, "filter.cvfs.required is not true", "run `git cvfs install --local`")
    return Check("filter", True, f"filter-process via {exe}")


def _hooks(ws: Workspace) -> Check:
    """Will git actually run git-cvfs's hooks here (Husky, pre-commit, lefthook, core.hooksPath)?"""
    lay = layout(ws.repo)
    problems = hook_problems(ws.repo)
    if problems:
        return Check("hooks", False, "; ".join(problems), "run `git cvfs install --local`")
    where = f"the git-cvfs block in {lay.scripts}/*" if lay.committed else f"{len(HOOKS)} hooks in {lay.directory}"
    return Check("hooks", True, where)


def _attributes(ws: Workspace) -> Check:
    path = ws.repo.root / ".gitattributes"
    count = path.read_text().count("filter=cvfs") if path.is_file() else 0
    if not count:
        return Check("tracking", False, "no path in .gitattributes uses filter=cvfs", "git cvfs track 'data/**'")
    return Check("tracking", True, f"{count} pattern(s) in .gitattributes")


def _config(ws: Workspace) -> Check:
    s = ws.settings
    archives = ", ".join(f"{n}={a.url}" for n, a in s.archives.items())
    return Check("config", True, f"{archives}; minSize {s.min_size} B; concurrency {s.concurrency}")


def _credentials(ws: Workspace, settings: ArchiveSettings) -> Check:
    name = f"credentials {settings.name}"
    scheme = settings.url.split(":", 1)[0]
    if scheme == "file":
        return Check(name, True, "none needed (file archive)")
    names = ws.load_secrets()
    extra = f"; .cvfs/secrets.env sets {', '.join(sorted(names))}" if names else ""
    if scheme == "s3":
        import boto3

        session = boto3.session.Session(profile_name=settings.profile) if settings.profile else boto3.session.Session()
        creds = session.get_credentials()
        if creds is None:
            return Check(
                name, False, "no AWS credentials found", "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            )
        return Check(name, True, f"AWS credentials from {creds.method}{extra}")  # the source, never the key
    if scheme == "az":
        if os.environ.get("AZURE_STORAGE_CONNECTION_STRING"):
            return Check(name, True, f"AZURE_STORAGE_CONNECTION_STRING{extra}")
        if os.environ.get("AZURE_STORAGE_KEY") or os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
            return Check(name, True, f"account key from the environment{extra}")
        try:
            import azure.identity  # noqa: F401
        except ImportError:
            return Check(
                name, False, "no Azure credentials found", "set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY"
            )
        return Check(name, True, f"DefaultAzureCredential (azure-identity){extra}")
    return Check(name, False, f"unsupported URL {settings.url}", "use file://, s3:// or az://")


def _trust(ws: Workspace, name: str) -> Check:
    from git_cvfs.local.trust import location_of, needs_approval

    settings = ws.settings.archives[name]
    problem = ws.trust_problem(name)
    if problem is not None:
        return Check(f"trust {name}", False, problem.message, problem.hint)
    how = "approved on this machine" if needs_approval(settings) else "set in your own git config or environment"
    return Check(f"trust {name}", True, f"{location_of(settings)} ({how})")


def _probe(ws: Workspace, name: str) -> Check:
    archive = ws.archive(name)
    found = archive.probe()  # the bucket, container or directory itself: a missing one fails
    archive.head("objects/00/00/" + "0" * 64)  # and objects can be asked about
    return Check(f"reach {name}", True, f"{archive.url}: {found}")


def _roundtrip(ws: Workspace, name: str) -> Check:
    archive = ws.archive(name)
    payload = os.urandom(1024)
    key = f"doctor/roundtrip-{os.getpid()}-{payload[:4].hex()}"
    with tempfile.TemporaryDirectory() as tmp:
        src, back = Path(tmp, "src"), Path(tmp, "back")
        src.write_bytes(payload)
        archive.put_file(key, src, len(payload), None)
        try:
            with open(back, "wb") as out:
                archive.download_to(key, out, len(payload))
        finally:
            archive.delete(key)
        if back.read_bytes() != payload:
            return Check(f"roundtrip {name}", False, f"{archive.url}/{key} returned other bytes than were written")
    if archive.head(key) is not None:
        return Check(f"roundtrip {name}", False, f"{archive.url}/{key} is still there after delete")
    return Check(f"roundtrip {name}", True, f"wrote, read back and deleted {archive.url}/{key}")


def doctor(ws: Workspace, *, probe: bool, roundtrip: bool) -> list[Check]:
    checks = [Check("git-cvfs", True, f"version {__version__}")]
    checks.append(_guard("filter", partial(_filter_config, ws)))
    checks.append(_guard("hooks", partial(_hooks, ws)))
    checks.append(_guard("tracking", partial(_attributes, ws)))
    config = _guard("config", partial(_config, ws))
    checks.append(config)
    if not config.ok:
        return checks
    for name in ws.archive_names:
        settings = ws.settings.archives[name]
        trust = _guard(f"trust {name}", partial(_trust, ws, name))
        checks.append(trust)
        if not trust.ok:
            continue  # not even the user's credential sources are looked at for a location not approved
        checks.append(_guard(f"credentials {name}", partial(_credentials, ws, settings)))
        if probe or roundtrip:
            checks.append(_guard(f"reach {name}", partial(_probe, ws, name)))
        if roundtrip:
            checks.append(_guard(f"roundtrip {name}", partial(_roundtrip, ws, name)))
    return checks
