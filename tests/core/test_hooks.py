from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from git_cvfs.core.plumbing.hook_shims import HOOKS, SHIM_ID
from tests.conftest import Project, cvfs, git, rand


def write_hook(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def test_foreign_hook_is_kept_chained_and_restored(project: Project) -> None:
    hooks = project.root / ".git/hooks"
    marker = project.root.parent / "foreign-ran"
    write_hook(hooks / "pre-commit", f"echo ran >> {marker}")
    foreign = (hooks / "pre-commit").read_text()
    out = project.cvfs("install", "--local")
    assert "chained" in out.stderr
    assert (hooks / "pre-commit.pre-cvfs").read_text() == foreign
    assert SHIM_ID in (hooks / "pre-commit").read_text()
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    assert marker.read_text() == "ran\n"
    assert "data/a.bin" in project.blob("HEAD:.cvfs/index/data.jsonl").decode()  # ours ran too
    project.cvfs("uninstall", "--local")
    assert (hooks / "pre-commit").read_text() == foreign
    assert not (hooks / "pre-commit.pre-cvfs").exists()
    assert not any(SHIM_ID in p.read_text() for p in hooks.iterdir() if p.is_file())


def test_failing_foreign_hook_stops_the_commit(project: Project) -> None:
    write_hook(project.root / ".git/hooks/pre-commit", "echo 'foreign says no' >&2; exit 3")
    project.cvfs("install", "--local")
    project.write("data/a.bin", rand(5000))
    project.git("add", "-A")
    proc = project.git("commit", "-m", "x", check=False)
    assert proc.returncode != 0 and "foreign says no" in proc.stderr


def test_chained_pre_push_hook_sees_the_same_stdin(project: Project) -> None:
    seen = project.root.parent / "prepush-stdin"
    write_hook(project.root / ".git/hooks/pre-push", f"cat > {seen}")
    project.cvfs("install", "--local")
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    head = project.git("rev-parse", "HEAD").stdout.strip()
    assert seen.read_text().split()[:2] == ["refs/heads/main", head]


def test_core_hooks_path_is_honoured(project: Project) -> None:
    custom = project.root.parent / "shared-hooks"
    project.git("config", "core.hooksPath", str(custom))
    project.cvfs("install", "--local")
    assert {p.name for p in custom.iterdir()} == set(HOOKS)
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    assert "data/a.bin" in project.blob("HEAD:.cvfs/index/data.jsonl").decode()


def test_reinstall_is_idempotent_and_upgrades_our_old_hooks(project: Project) -> None:
    hooks = project.root / ".git/hooks"
    again = project.cvfs("install", "--local")
    assert again.stderr.count("unchanged") == len(HOOKS)
    old = (hooks / "post-merge").read_text().replace("version ", "version 0.0.0-old ")
    (hooks / "post-merge").write_text(old)
    upgraded = project.cvfs("install", "--local")
    assert "upgraded" in upgraded.stderr and "0.0.0-old" not in (hooks / "post-merge").read_text()
    assert not (hooks / "post-merge.pre-cvfs").exists()


def test_taken_legacy_name_is_an_error_not_an_overwrite(project: Project) -> None:
    hooks = project.root / ".git/hooks"
    write_hook(hooks / "pre-commit", "echo other-manager")
    write_hook(hooks / "pre-commit.pre-cvfs", "echo older")
    proc = project.cvfs("install", "--local", check=False)
    assert proc.returncode == 1 and "pre-commit" in proc.stderr and "hint:" in proc.stderr
    assert "other-manager" in (hooks / "pre-commit").read_text()
    assert "older" in (hooks / "pre-commit.pre-cvfs").read_text()


def test_filter_installs_missing_hooks_on_first_use(project: Project, tmp_path: Path) -> None:
    project.write("data/a.bin", rand(5000))
    project.commit_all()
    for hook in HOOKS:
        (project.root / ".git/hooks" / hook).unlink()
    project.write("data/b.bin", rand(5000, 1))
    project.git("add", "data/b.bin")  # runs the filter
    assert all(SHIM_ID in (project.root / ".git/hooks" / h).read_text() for h in HOOKS)


def test_global_install_and_uninstall_edit_only_git_config(tmp_path: Path) -> None:
    cvfs(tmp_path, "install", "--global")
    cfg = Path(os.environ["HOME"], ".gitconfig").read_text()
    assert "filter-process" in cfg and "required = true" in cfg and "merge-index" in cfg
    cvfs(tmp_path, "uninstall", "--global")
    cfg = Path(os.environ["HOME"], ".gitconfig").read_text()
    assert "cvfs" not in cfg
    assert git(tmp_path, "config", "--global", "user.name").stdout.strip() == "Test"


def test_install_global_sets_git_config_and_touches_no_repository(project: Project) -> None:
    # A user who runs `git cvfs install` from inside some other checkout (a shell that happened
    # to be there) must not find our hooks written into it.
    other = project.root.parent / "someone-elses"
    git(project.root.parent, "init", "-q", str(other))
    before = sorted(p.name for p in (other / ".git/hooks").iterdir())
    config = (other / ".git/config").read_text()
    for args in (["install"], ["install", "--global"], ["uninstall", "--global"], ["install"]):
        out = cvfs(other, *args)
        assert "no repository touched" in out.stderr or args[0] == "uninstall"
    assert sorted(p.name for p in (other / ".git/hooks").iterdir()) == before
    assert (other / ".git/config").read_text() == config
    assert "filter-process" in git(project.root, "config", "--global", "filter.cvfs.process").stdout
    # --local is the way to put them in now; outside a repository it says so.
    for hook in HOOKS:
        (project.root / ".git/hooks" / hook).unlink()
    project.cvfs("install", "--local")
    assert all(SHIM_ID in (project.root / ".git/hooks" / h).read_text() for h in HOOKS)
    refused = cvfs(project.root.parent, "install", "--local", check=False)
    assert refused.returncode == 2 and "needs a repository" in refused.stderr


def test_a_hook_with_nothing_to_do_imports_nothing_heavy(project: Project) -> None:
    # Every checkout and commit runs these hooks; the usual answer is "nothing to do",
    # and it must not pay for importing the core (about 60 ms).
    probe = (
        "import sys; from git_cvfs.cli import main; rc = main(sys.argv[1:]); "
        "print(rc, sorted(m for m in sys.modules if m.startswith(('git_cvfs.core', 'git_cvfs.commands.hook_impl', 'argparse'))))"
    )
    project.commit_all("setup")
    for hook in ("post-checkout", "post-commit"):
        out = subprocess.run(
            [sys.executable, "-c", probe, "hook-impl", hook, "0", "0", "1"],
            cwd=project.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.strip() == "0 []", (hook, out)
    # post-checkout runs after every checkout: it reads the git dir itself, so it starts no git
    # and imports neither subprocess nor typing (about 20 ms between them).
    # Nor when GIT_DIR names the git dir, as in the post-checkout of every `git clone`.
    light = "import sys; from git_cvfs.cli import main; rc = main(sys.argv[1:]); print(rc, 'subprocess' in sys.modules, 'typing' in sys.modules)"
    for env in ({}, {"GIT_DIR": str(project.root / ".git")}):
        out = subprocess.run(
            [sys.executable, "-c", light, "hook-impl", "post-checkout", "0", "0", "1"],
            cwd=project.root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **env},
        ).stdout
        assert out.split() == ["0", "False", "False"], (env, out)


def test_the_hooks_git_dir_without_git_is_what_git_says(project: Project, tmp_path: Path) -> None:
    # The post-checkout hook decides "nothing to do" from the git dir; read wrongly, large
    # files would stay refs after a checkout with no notice. Compare with git's own answer.
    from git_cvfs.commands.hook_gate import git_dir_here

    project.commit_all("setup")
    linked = tmp_path / "linked"
    git(project.root, "worktree", "add", "-q", str(linked))
    relative = tmp_path / "relative"
    relative.mkdir()
    (relative / ".git").write_text("gitdir: ../linked-gitdir\n")
    os.symlink(Path(git(linked, "rev-parse", "--absolute-git-dir").stdout.strip()), tmp_path / "linked-gitdir")
    cwd = os.getcwd()
    try:
        for where in (project.root, linked, relative):
            os.chdir(where)
            found = git_dir_here()
            assert found is not None
            expected = git(where, "rev-parse", "--git-dir").stdout.strip()
            assert os.path.realpath(found) == os.path.realpath(os.path.join(where, expected)), where
        os.chdir(project.root)
        # GIT_DIR set, whatever is on disk here: a directory, absolute (as git clone runs the
        # hook) or relative, with or without GIT_WORK_TREE; a .git file, which git follows.
        linked_git_dir = Path(git(linked, "rev-parse", "--absolute-git-dir").stdout.strip())
        for env in (
            {"GIT_DIR": str(linked_git_dir)},
            {"GIT_DIR": os.path.relpath(linked_git_dir)},
            {"GIT_DIR": str(linked_git_dir), "GIT_WORK_TREE": str(linked)},
            {"GIT_DIR": str(linked / ".git")},
        ):
            os.environ.update(env)
            try:
                found = git_dir_here()
                expected = git(project.root, "rev-parse", "--git-dir").stdout.strip()
            finally:
                for name in env:
                    del os.environ[name]
            assert found is not None and os.path.realpath(found) == os.path.realpath(expected), env
    finally:
        os.chdir(cwd)
