"""worktree.budget: a standing limit on the disk materialized files use. After a checkout, a
merge and `ensure`, the least recently used materialized files are offloaded, with every check
offload makes (the file hashed, the archives shown to hold its object), until the rest fit."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from git_cvfs import output
from git_cvfs.core.model.managed import State, list_managed, list_unversioned
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.core.offload import offload, plan_budget
from git_cvfs.format.size import format_size

# The filter leaves this in the git dir when it wrote data and a budget is set: the
# post-checkout / post-merge hook then has work to do (commands/hook_gate.py looks for it).
DUE_FILE = "budget-due"


@dataclass
class BudgetResult:
    budget: int
    used: int  # bytes of materialized files now
    offloaded: list[str] = field(default_factory=list)
    freed: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # path -> why offload kept it

    @property
    def over(self) -> int:
        return max(0, self.used - self.budget)

    def to_json(self) -> dict[str, object]:
        return {
            "budget": self.budget,
            "used": self.used,
            "offloaded": self.offloaded,
            "freed": self.freed,
            "refused": self.refused,
        }


def usage(ws: Workspace) -> int:
    """Bytes the materialized managed files (registered ones included) take in the work tree."""
    return sum(f.size for f in list_managed(ws) + list_unversioned(ws) if f.state is State.MATERIALIZED)


def keep_within_budget(ws: Workspace, *, keep: Collection[str] = ()) -> BudgetResult | None:
    """Offload least recently used files until the materialized ones fit worktree.budget; the
    paths in keep (what ensure was just asked for) stay. None when no budget is set."""
    budget = ws.settings.worktree_budget
    if budget is None:
        return None
    result = BudgetResult(budget, 0)
    kept = set(keep)
    # A refused file (not archived, changed) stays: plan again without it, so the next least
    # recently used go in its place, until the rest fit or nothing more can go.
    while chosen := plan_budget(ws, budget, keep=kept):
        done = offload(ws, [], dry_run=False, files=chosen)
        for item in done.items:
            if item.done:
                result.offloaded.append(item.path)
                result.freed += item.size
            elif item.refused:
                result.refused[item.path] = item.refused
            kept.add(item.path)
        if not any(item.refused for item in done.items):
            break
    result.used = usage(ws)
    return result


def mark_due(ws: Workspace) -> None:
    (ws.repo.git_dir / "cvfs").mkdir(parents=True, exist_ok=True)
    (ws.repo.git_dir / "cvfs" / DUE_FILE).touch()


def take_due(ws: Workspace) -> bool:
    try:
        (ws.repo.git_dir / "cvfs" / DUE_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


def report(result: BudgetResult) -> None:
    """One line for what was offloaded; a warning, with the fix, while over the budget."""
    if result.offloaded:
        output.info(
            f"git-cvfs: worktree.budget {format_size(result.budget)}: offloaded {len(result.offloaded)} least "
            f"recently used file(s), {format_size(result.freed)}; {format_size(result.used)} in use"
        )
    if result.over:
        first = next(iter(result.refused.items()), None)
        why = f"; {first[0]}: {first[1]}" if first else " by the files just asked for"
        output.warn(
            f"the work tree is {format_size(result.over)} over worktree.budget "
            f"({format_size(result.used)} of {format_size(result.budget)}){why}",
            hint="`git cvfs push` what is not archived, or `git cvfs offload PATH`; raise it with "
            "`git config cvfs.worktree.budget SIZE`",
        )
