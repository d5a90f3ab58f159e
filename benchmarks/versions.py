"""Two versions of git-cvfs side by side, in one run: did a change cost speed or start-up time?

    .venv/bin/python benchmarks/versions.py OLD_REV [NEW_REV]   # NEW_REV: the work tree as it is

Each version is installed as a user installs it (./install.sh from a checkout of that
revision, into a scratch directory). Every round runs each workload for both, alternating
which goes first, in fresh directories with their own HOME; the table gives medians and
the new/old ratio. Workloads: start-up (`git cvfs --version`), a hook with nothing to do,
add + commit of 200 x 256 KiB on a directory archive, a clone that materializes them, a
lazy clone then `ensure`, and `git cvfs status`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install(rev: str | None, scratch: Path) -> Path:
    """git-cvfs at `rev` (None: this work tree) installed with ./install.sh; its executable."""
    src = ROOT
    if rev is not None:
        src = scratch / f"src-{rev}"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(src), rev], check=True)
    home = scratch / f"install-{rev or 'worktree'}"
    env = {**os.environ, "GIT_CVFS_HOME": str(home), "GIT_CVFS_BIN": str(home / "bin")}
    subprocess.run(["bash", str(src / "install.sh"), "--no-git-config"], env=env, check=True, capture_output=True)
    return home / "bin" / "git-cvfs"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def round_of(exe: Path, work: Path) -> dict[str, float]:
    home = work / "home"
    home.mkdir(parents=True)
    env = {
        "HOME": str(home),
        "PATH": f"{exe.parent}:/usr/bin:/bin",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CVFS_NO_PROGRESS": "1",
    }
    git = ["git", "-c", "user.name=B", "-c", "user.email=b@example.invalid"]
    # From the scratch HOME: an older version's `install --global` also wrote hooks into the
    # repository it was run in.
    subprocess.run([str(exe), "install", "--global"], cwd=home, env=env, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(work / "remote.git")], check=True)
    project = work / "project"
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    subprocess.run(["git", "remote", "add", "origin", str(work / "remote.git")], cwd=project, check=True)
    (work / "archive").mkdir()  # made here: older versions have no `init --create`
    archive = (work / "archive").as_uri()
    subprocess.run(["git", "cvfs", "init", "--archive", archive], cwd=project, env=env, check=True, capture_output=True)
    subprocess.run(["git", "cvfs", "track", "data/**"], cwd=project, env=env, check=True, capture_output=True)
    subprocess.run(["git", "config", "-f", ".cvfs/config", "scope.minSize", "64KB"], cwd=project, check=True)
    (project / "data").mkdir()
    for i in range(200):
        (project / "data" / f"f{i:03d}.bin").write_bytes(os.urandom(256 << 10))
    out: dict[str, float] = {}
    out["start-up (--version)"] = statistics.median(timed(["git", "cvfs", "--version"], project, env) for _ in range(9))
    subprocess.run([*git, "add", "-A"], cwd=project, env=env, check=True, capture_output=True)
    out["add + commit 200 x 256 KiB"] = timed(
        ["sh", "-c", "git add -A && git -c user.name=B -c user.email=b@example.invalid commit -q -m data"], project, env
    )
    out["hook with nothing to do"] = statistics.median(
        timed(["git", "cvfs", "hook-impl", "post-checkout", "0", "0", "1"], project, env) for _ in range(9)
    )
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=project, env=env, check=True, capture_output=True)
    out["clone + materialize"] = timed(["git", "clone", "-q", str(work / "remote.git"), "clone"], work, env)
    out["status"] = timed(["git", "cvfs", "status"], work / "clone", env)
    lazy_env = {**env, "GIT_CVFS_SKIP_SMUDGE": "1"}
    out["lazy clone"] = timed(["git", "clone", "-q", str(work / "remote.git"), "lazy"], work, lazy_env)
    out["ensure after a lazy clone"] = timed(["git", "cvfs", "ensure"], work / "lazy", env)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new", nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvfs-versions-") as tmp:
        scratch = Path(tmp)
        try:
            exes = {"old": install(args.old, scratch), "new": install(args.new, scratch)}
            results: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
            for n in range(args.rounds):
                order = ["old", "new"] if n % 2 == 0 else ["new", "old"]
                for which in order:
                    for key, value in round_of(exes[which], scratch / f"r{n}-{which}").items():
                        results[which].setdefault(key, []).append(value)
            print(f"| workload (median of {args.rounds}) | {args.old} | {args.new or 'work tree'} | new/old |")
            print("|---|---|---|---|")
            for key, olds in results["old"].items():
                old, new = statistics.median(olds), statistics.median(results["new"][key])
                print(f"| {key} | {old * 1000:.0f} ms | {new * 1000:.0f} ms | {new / old:.2f} |")
        finally:
            for rev in (args.old, args.new):
                if rev is not None:
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch / f"src-{rev}")],
                        check=False,
                        capture_output=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
