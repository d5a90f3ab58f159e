"""`git cvfs try`: a guided demo on a throwaway project, archive and remote.

Every step is a real command, printed with its real output, and checked: the
demo doubles as a smoke test of the install. The user's ~/.gitconfig is left
alone: the filter settings reach git through GIT_CONFIG_* variables, and the demo's
approval of its archive goes into a git config file of its own (GIT_CONFIG_GLOBAL).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from git_cvfs.core.plumbing.hook_shims import executable
from git_cvfs.core.setup import filter_config
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.local.cache import sha256_file

DATA_SIZE = 3 << 20


def _env(exe: str, root: Path) -> dict[str, str]:
    env = dict(os.environ)
    # A git config of the demo's own: `git cvfs init` approves the demo's archive there, not in ~/.gitconfig.
    env["GIT_CONFIG_GLOBAL"] = str(root / "gitconfig")
    env.pop("GIT_CVFS_SKIP_SMUDGE", None)
    env["PATH"] = str(Path(exe).parent) + os.pathsep + env.get("PATH", "")
    config = filter_config(exe)
    base = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    for i, (key, value) in enumerate(config.items(), start=base):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    extra = {"init.defaultBranch": "main", "advice.detachedHead": "false"}
    i = base + len(config)
    for key, value in extra.items():
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
        i += 1
    env["GIT_CONFIG_COUNT"] = str(i)
    env.setdefault("GIT_AUTHOR_NAME", "git-cvfs demo")
    env.setdefault("GIT_AUTHOR_EMAIL", "demo@git-cvfs.invalid")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    env["GIT_CVFS_NO_PROGRESS"] = "1"
    return env


def _sha256(path: Path) -> str:
    return sha256_file(path)[0]


class Demo:
    def __init__(self, root: Path, say: Callable[[str], None]) -> None:
        self.root = root
        self.say = say
        self.exe = executable()
        self.env = _env(self.exe, root)

    def run(self, cmd: str, cwd: Path, *, extra_env: dict[str, str] | None = None, expect: int = 0) -> str:
        shown = " ".join(f"{k}={v}" for k, v in (extra_env or {}).items())
        where = cwd.name
        self.say(f"\n  {where}$ {shown + ' ' if shown else ''}{cmd}")
        proc = subprocess.run(
            shlex.split(cmd), cwd=cwd, env={**self.env, **(extra_env or {})}, capture_output=True, text=True
        )
        text = (proc.stdout + proc.stderr).rstrip()
        for line in text.splitlines():
            self.say(f"    {line}")
        if proc.returncode != expect:
            raise CvfsError(f"demo step failed: `{cmd}` exited {proc.returncode}", hint="see the output above")
        if expect:
            self.say(f"    (exit {proc.returncode}, as expected)")
        return proc.stdout

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            raise CvfsError(f"demo check failed: {what}", hint="please report this with the output above")
        self.say(f"    ✓ {what}")


def run_demo(path: Path | None, say: Callable[[str], None]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="git-cvfs-try-")) if path is None else path.resolve()
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} is not empty", hint="give --path a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    d = Demo(root, say)
    archive, remote, project = root / "archive", root / "remote.git", root / "project"
    say(f"git-cvfs demo in {root}")
    say(f"  archive (embedded file archive): {archive}\n  remote: {remote}")

    say("\n1. A project whose data/ is managed by git-cvfs")
    d.run(f"git init --bare -q {remote}", root)
    d.run(f"git init -q {project}", root)
    d.run(f"git cvfs init --archive {archive.as_uri()} --create", project)
    d.run("git config -f .cvfs/config scope.minSize 64KB", project)
    d.run("git cvfs track 'data/**'", project)  # quoted, as a user must type it: the shell would expand it

    say("\n2. Add data with plain git: large files become refs, their bytes go to the archive")
    (project / "data").mkdir()
    (project / "data" / "train.bin").write_bytes(os.urandom(DATA_SIZE))
    (project / "data" / "weights.bin").write_bytes(os.urandom(DATA_SIZE // 2))
    (project / "data" / "labels.csv").write_text("id,label\n1,cat\n2,dog\n")
    want = {name: _sha256(project / "data" / name) for name in ("train.bin", "weights.bin")}
    d.run("git add .", project)
    d.run("git commit -q -m 'Add dataset'", project)
    blob = d.run("git cat-file -p HEAD:data/train.bin", project)
    d.check(blob.startswith('{"cvfs":1,"oid":"sha256:' + want["train.bin"]), "git stores a 100-byte ref for train.bin")
    d.check(
        (archive / "objects" / want["train.bin"][:2] / want["train.bin"][2:4] / want["train.bin"]).is_file(),
        "the pre-commit hook archived its bytes",
    )
    d.run("git cvfs status", project)

    say("\n3. Push and clone: the clone materializes the files from the archive")
    d.run(f"git remote add origin {remote}", project)
    d.run("git push -q origin main", project)
    d.run(f"git clone -q {remote} clone", root)
    clone = root / "clone"
    d.check(all(_sha256(clone / "data" / n) == h for n, h in want.items()), "the clone holds the exact bytes")
    d.run("git status --short", clone)

    say("\n4. A lazy clone: refs only, then fetch just what you need")
    d.run(f"git clone -q {remote} lazy", root, extra_env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    lazy = root / "lazy"
    d.run("git cvfs ls-files", lazy)
    d.run("git cvfs preflight data", lazy, expect=1)
    d.run("git cvfs ensure data/train.bin", lazy)
    d.check(_sha256(lazy / "data" / "train.bin") == want["train.bin"], "ensure wrote train.bin, verified")
    d.check((lazy / "data" / "weights.bin").stat().st_size < 1024, "weights.bin is still a ref")
    d.run("git cvfs status", lazy)
    d.run("git status --short", lazy)

    say("\n5. Free disk safely, then prove nothing is lost")
    d.run("git cvfs offload --dry-run data", lazy)
    d.run("git cvfs offload data/train.bin", lazy)
    d.check(
        (lazy / "data" / "train.bin").stat().st_size < 1024, "train.bin is a ref again; its bytes are in the archive"
    )
    d.run("git status --short", lazy)
    d.run("git cvfs reconcile", lazy)

    say(f"\nDone. Everything is in {root}; delete it when you are finished.")
    say("Next: `git cvfs init` in your own repository, then `git cvfs track 'data/**'`.")
    return root
