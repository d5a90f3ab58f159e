"""How many archives hold a verified copy of an object, asked at the moment bytes are about to go.

offload, prune and guard act on this, never on records: an inventory row or this machine's
log says what was true once; only the archive's stored bytes say what is true now. Local
bytes may go only when the primary holds a verified copy and, counting every archive,
at least `archive.minCopies` do (git-annex's numcopies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.format.ref import Ref
from git_cvfs.local.archived_log import ArchivedLog
from git_cvfs.remote.verify import Verdict, Verification, verify_copy


@dataclass
class Copies:
    checks: dict[str, Verification] = field(default_factory=dict)  # archive name -> what its copy is
    min_copies: int = 1
    unasked: dict[str, str] = field(default_factory=dict)  # archive name -> why it could not be asked

    @property
    def primary_unasked(self) -> str | None:
        """Why the primary could not be asked at all (unreachable, not approved), if so: no
        answer about the copy, as against an answer that it is missing or other bytes."""
        return self.unasked.get("primary")

    @property
    def count(self) -> int:
        return sum(1 for v in self.checks.values() if v.ok)

    @property
    def enough(self) -> bool:
        primary = self.checks.get("primary")
        return primary is not None and primary.ok and self.count >= self.min_copies

    def why_not(self) -> str:
        """Why local bytes may not go, naming each archive's answer."""
        primary = self.checks.get("primary")
        if primary is None or not primary.ok:
            what = primary.how if primary is not None else "not asked"
            verdict = {Verdict.MISSING: "does not hold it", Verdict.DIFFERENT: "holds other bytes"}.get(
                primary.verdict if primary is not None else Verdict.UNVERIFIED, "cannot show it holds it"
            )
            return f"the primary archive {verdict} ({what}); run `git cvfs push`, then `git cvfs reconcile`"
        others = ", ".join(f"{n}: {v.verdict.value} ({v.how})" for n, v in self.checks.items() if not v.ok)
        return (
            f"archive.minCopies is {self.min_copies}, and {self.count} archive(s) hold a verified copy"
            + (f" ({others})" if others else "")
            + "; run `git cvfs push` to fill the others"
        )


class CopyChecker:
    """Verifies copies in every approved archive, reusing each archive's log of verified uploads."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._logs: dict[str, dict[str, str]] = {}

    def _verified_etags(self, name: str) -> dict[str, str]:
        if name not in self._logs:
            self._logs[name] = ArchivedLog(self.ws.repo.cvfs_dir, self.ws.settings.archives[name]).known()
        return self._logs[name]

    def copies(self, ref: Ref, *, local: Path | None) -> Copies:
        """Ask each archive, primary first, until enough copies are shown (or every one was asked).
        `local`: a file known to be the object, for digests kept in another form than the oid."""
        found = Copies(min_copies=self.ws.settings.min_copies)
        for name in self.ws.archive_names:
            try:
                archive = self.ws.archive(name)
                found.checks[name] = verify_copy(
                    archive,
                    ref,
                    local=local,
                    verified_etag=self._verified_etags(name).get(ref.hex),
                    read_into=self.ws.cache.tmp,
                )
            except CvfsError as exc:  # unreachable, or not approved: no copy shown there
                found.checks[name] = Verification(Verdict.UNVERIFIED, None, exc.message)
                found.unasked[name] = exc.message
            if found.enough:
                break
            if name == "primary" and not found.checks[name].ok:
                break  # without the primary nothing may go: the rest need not be asked
        return found
