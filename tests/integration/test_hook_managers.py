"""git-cvfs's hooks beside the hook managers real repositories use, for real: Husky and lefthook
from npm, the pre-commit framework from PyPI, and a committed core.hooksPath; in either
install order, and after the manager reinstalls itself.

Each test checks both sides: the user's own hook still runs, and ours does (the commit
records the inventory row; the push uploads what the archive lacks)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from git_cvfs.core.plumbing.hook_shims import HOOKS
from tests.conftest import Project, rand
from tests.servers import ROOT

MANAGERS = ROOT / ".cache" / "hook-managers" / "node_modules" / ".bin"
PRE_COMMIT = str(Path(sys.executable).parent / "pre-commit")


def tool(name: str) -> str:
    path = MANAGERS / name
    assert path.exists(), f"{name} is not installed: run ./install.sh --dev (it installs Husky and lefthook from npm)"
    return str(path)


def committed_with_row(project: Project, name: str, seed: int) -> None:
    """Commit a new managed file; our pre-commit hook must have recorded its row in that commit."""
    project.write(name, rand(5000, seed))
    project.git("add", name)
    project.git("commit", "-q", "-m", name)
    shard = project.blob(f"HEAD:.cvfs/index/{name.split('/')[0]}.jsonl").decode()
    assert f'"path":"{name}"' in shard, "git-cvfs's pre-commit hook did not run"


def push_uploads(project: Project, name: str, seed: int) -> None:
    """Our pre-push hook must upload an object the commit did not archive."""
    data = rand(5000, seed)
    project.write(name, data)
    project.git("add", name)
    project.git("commit", "-q", "--no-verify", "-m", name)  # no pre-commit: nothing archived
    obj = project.archive_path(hashlib.sha256(data).hexdigest())
    assert not obj.exists()
    project.git("push", "-q", "origin", "HEAD:main")
    assert obj.read_bytes() == data, "git-cvfs's pre-push hook did not run"


def user_hook_ran(marker: Path, times: int) -> None:
    assert marker.exists() and marker.read_text().count("ran\n") == times, "the user's own hook did not run"


def test_husky_installed_before_git_cvfs(project: Project, tmp_path: Path) -> None:
    subprocess.run([tool("husky")], cwd=project.root, check=True, capture_output=True)
    assert project.git("config", "core.hooksPath").stdout.strip() == ".husky/_"
    marker = tmp_path / "user-hook"
    (project.root / ".husky/pre-commit").write_text(f"echo ran >> {marker}\n")
    installed = project.cvfs("install", "--local")
    assert ".husky/pre-commit" in installed.stderr and "git add" in installed.stderr
    assert not list((project.root / ".husky/_").glob("*.pre-cvfs"))  # Husky's own files are left alone
    committed_with_row(project, "data/a.bin", 1)
    user_hook_ran(marker, 1)
    subprocess.run([tool("husky")], cwd=project.root, check=True, capture_output=True)  # npm install again
    committed_with_row(project, "data/b.bin", 2)
    user_hook_ran(marker, 2)
    push_uploads(project, "data/c.bin", 3)
    assert json.loads(project.cvfs("doctor", "--json").stdout)["ok"]
    project.cvfs("uninstall", "--local")
    assert "git-cvfs" not in (project.root / ".husky/pre-commit").read_text()
    assert (project.root / ".husky/pre-commit").read_text() == f"echo ran >> {marker}\n"


def test_husky_installed_after_git_cvfs_is_said_loudly_and_nothing_unarchived_is_pushed(project: Project) -> None:
    subprocess.run([tool("husky")], cwd=project.root, check=True, capture_output=True)
    data = rand(5000, 4)
    project.write("data/a.bin", data)
    added = project.git("add", "data/a.bin")
    assert "git-cvfs hooks will not run" in added.stderr and "git cvfs install" in added.stderr
    # Defence in depth: what `git add` stored is archived at once, so a push cannot publish
    # a ref whose bytes exist only on this disk, though no hook of ours runs.
    assert project.archive_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    doctor = json.loads(project.cvfs("doctor", "--json", check=False).stdout)
    hooks = next(c for c in doctor["checks"] if c["check"] == "hooks")
    assert not hooks["ok"] and ".husky/pre-commit" in hooks["detail"]
    project.cvfs("install", "--local")
    committed_with_row(project, "data/b.bin", 5)


@pytest.mark.parametrize("order", ["pre-commit first", "git-cvfs first"])
def test_the_pre_commit_framework_in_either_order(project: Project, tmp_path: Path, order: str) -> None:
    marker = tmp_path / "user-hook"
    (project.root / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n  - id: mine\n    name: mine\n    language: system\n"
        f"    entry: sh -c 'echo ran >> {marker}'\n    always_run: true\n    pass_filenames: false\n"
    )
    project.git("add", ".pre-commit-config.yaml")
    install_pre_commit = [PRE_COMMIT, "install", "-t", "pre-commit", "-t", "pre-push"]
    if order == "pre-commit first":
        project.git("config", "--unset-all", "core.hooksPath", check=False)
        for hook in ("pre-commit", "pre-push"):
            (project.root / ".git/hooks" / hook).unlink()
        subprocess.run(install_pre_commit, cwd=project.root, check=True, capture_output=True)
        project.cvfs("install", "--local")
    else:
        subprocess.run(install_pre_commit, cwd=project.root, check=True, capture_output=True)
    hooks = project.root / ".git/hooks"
    assert "pre-commit.com" in (hooks / "pre-commit").read_text()  # the framework keeps its hook
    committed_with_row(project, "data/a.bin", 6)
    user_hook_ran(marker, 1)
    subprocess.run(install_pre_commit, cwd=project.root, check=True, capture_output=True)  # reinstalled
    committed_with_row(project, "data/b.bin", 7)  # `git add` ran our filter: nothing chained twice
    user_hook_ran(marker, 2)
    assert not list(hooks.glob("*.pre-cvfs"))
    push_uploads(project, "data/c.bin", 8)
    assert json.loads(project.cvfs("doctor", "--json").stdout)["ok"]


def test_git_cvfs_hooks_listed_in_a_pre_commit_config(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """.pre-commit-hooks.yaml: a team lists git-cvfs's hooks in its own config instead; the
    framework runs pre-push hooks without git's stdin, naming the refs in its environment."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    for hook in ("pre-commit", "pre-push"):
        (project.root / ".git/hooks" / hook).unlink()
    (project.root / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {ROOT}\n  rev: {head.stdout.strip()}\n  hooks:\n"
        "  - id: git-cvfs-pre-commit\n  - id: git-cvfs-pre-push\n"
    )
    project.git("add", ".pre-commit-config.yaml")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    subprocess.run([PRE_COMMIT, "install", "-t", "pre-commit", "-t", "pre-push"], cwd=project.root, check=True)
    committed_with_row(project, "data/a.bin", 9)
    push_uploads(project, "data/b.bin", 10)


@pytest.mark.parametrize("order", ["lefthook first", "git-cvfs first"])
def test_lefthook_in_either_order_and_after_it_rewrites_its_hooks(
    project: Project, tmp_path: Path, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "user-hook"
    config = project.root / "lefthook.yml"
    config.write_text(f"pre-commit:\n  commands:\n    mine:\n      run: echo ran >> {marker}\n")
    hooks = project.root / ".git/hooks"
    if order == "lefthook first":
        for hook in ("pre-commit", "pre-push"):
            (hooks / hook).unlink()
        subprocess.run([tool("lefthook"), "install"], cwd=project.root, check=True, capture_output=True)
        project.cvfs("install", "--local")
    else:
        subprocess.run([tool("lefthook"), "install"], cwd=project.root, check=True, capture_output=True)
    monkeypatch.setenv("PATH", f"{MANAGERS}{os.pathsep}{os.environ['PATH']}")  # its hooks find lefthook
    committed_with_row(project, "data/a.bin", 11)
    user_hook_ran(marker, 1)
    # A change to lefthook.yml makes lefthook rewrite its hooks at its next run; our filter
    # chains them again at the next `git add`.
    config.write_text(
        f"pre-commit:\n  commands:\n    mine:\n      run: echo ran >> {marker}\n    other:\n      run: 'true'\n"
    )
    subprocess.run([tool("lefthook"), "install"], cwd=project.root, check=True, capture_output=True)
    committed_with_row(project, "data/b.bin", 12)
    user_hook_ran(marker, 2)
    assert json.loads(project.cvfs("doctor", "--json").stdout)["ok"]


def test_a_committed_hooks_path(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "user-hook"
    githooks = project.root / ".githooks"
    githooks.mkdir()
    (githooks / "pre-commit").write_text(f"#!/bin/sh\necho ran >> {marker}\n")
    (githooks / "pre-commit").chmod(0o755)
    project.git("add", ".githooks")
    project.git("commit", "-q", "-m", "team hooks")
    project.git("config", "core.hooksPath", ".githooks")
    installed = project.cvfs("install", "--local")
    assert "added the git-cvfs block to" in installed.stderr and not list(githooks.glob("*.pre-cvfs"))
    assert (githooks / "pre-commit").read_text().startswith("#!/bin/sh\n# >>> git-cvfs >>>")
    project.git("add", ".githooks")
    committed_with_row(project, "data/a.bin", 13)
    user_hook_ran(marker, 1)
    push_uploads(project, "data/b.bin", 14)
    assert project.cvfs("install", "--local").stderr.count("unchanged") == len(HOOKS)
