"""git-cvfs, Git LFS, DVC (copies, and links) and git-annex on the same workloads, in one run.

    .venv/bin/python benchmarks/peers.py            # 1 GiB file, 2,000 x 256 KiB, 5 rounds
    .venv/bin/python benchmarks/peers.py --quick    # 64 MiB, 200 files, 2 rounds
    .venv/bin/python benchmarks/peers.py --tools cvfs,lfs --rounds 7

Needs git-lfs and git-annex (apt-get install git-lfs git-annex) and DVC in
.cache/bench-tools (python3 -m venv .cache/bench-tools && .cache/bench-tools/bin/pip install dvc);
a tool that is missing is left out of the table, and the report says so.

Every tool works against a remote on this machine: git-cvfs its directory archive (the
embedded default kind), Git LFS the bare remote's built-in file transfer, DVC a local
remote, git-annex the bare remote. Each round, in fresh directories, every tool runs every
workload; the order of the tools rotates from round to round; every timed step starts after
a sync. New data is written by replacing files (a new inode), as most programs save, so
DVC's hardlinked cache is never written through.

Workloads (what the user waits for; each includes every command the tool needs):
  add+commit 1 GiB          write the file, then add and commit it (git-cvfs archives at commit)
  push 1 GiB                publish it (git push; dvc push; git annex copy)
  add+commit 2,000          the same for 2,000 x 256 KiB in 10 directories
  push 2,000
  change 2,000, add+commit  all 2,000 rewritten on a second branch, added and committed
  status                    the tool's own status on that clean tree
  switch 2,000              checkout of the first branch, then back (the mean of the two)
  clone + materialize       a fresh clone of the first branch with every file's bytes
  lazy clone + 200          a clone without the data, then one directory of 200 files
  disk / data               the clone's bytes on disk (du, hard links counted once) over the data

"plain git" is the baseline: the same data as git blobs (its lazy clone a partial clone with a
sparse checkout of the directory); the last columns are git-cvfs's time over Git LFS's and
over plain git's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import measure  # benchmarks/measure.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CVFS = str(Path(sys.executable).parent / "git-cvfs")
DVC = str(ROOT / ".cache" / "bench-tools" / "bin" / "dvc")
DIRS = measure.DIRS
WORKLOADS = [
    "add+commit 1 GiB",
    "push 1 GiB",
    "add+commit 2,000",
    "push 2,000",
    "change 2,000, add+commit",
    "status",
    "touch 2,000, re-check",
    "switch 2,000",
    "clone + materialize",
    "lazy clone + 200",
    "disk / data",
]


class Tool:
    name = ""
    label = ""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> None:
        proc = subprocess.run(list(cmd), cwd=cwd, env={**self.env, **(env or {})}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"error: {self.name}: {' '.join(cmd)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")

    def git(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.run(cwd, "git", *args, env=env)

    def available(self) -> bool:
        return True

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        raise NotImplementedError

    def add_commit(self, repo: Path, paths: list[str], message: str) -> None:
        """git add and commit: what git-cvfs, Git LFS and plain git need (their filters and hooks run)."""
        self.git(repo, "add", *paths)
        self.git(repo, "commit", "-q", "-m", message)

    def push(self, repo: Path, branch: str) -> None:
        self.git(repo, "push", "-q", "origin", branch)

    def switch(self, repo: Path, branch: str) -> None:
        self.git(repo, "checkout", "-q", branch)

    def status(self, repo: Path) -> None:
        raise NotImplementedError

    def recheck(self, repo: Path) -> None:
        """What notices that files' stat data changed and reads them again: `git status`, for
        every tool whose files git filters or stores."""
        self.git(repo, "status", "--porcelain")

    def clone(self, remote: Path, dest: Path) -> None:
        self.git(dest.parent, "clone", "-q", str(remote), dest.name)

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        raise NotImplementedError


class Cvfs(Tool):
    name, label = "cvfs", "git-cvfs"

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        self.run(repo, CVFS, "init", "--archive", (scratch / "cvfs-archive").as_uri(), "--create")
        self.git(repo, "config", "-f", ".cvfs/config", "scope.minSize", "64KB")
        self.run(repo, CVFS, "track", "data/**")
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", "setup")

    def status(self, repo: Path) -> None:
        self.run(repo, CVFS, "status")

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        self.git(dest.parent, "clone", "-q", str(remote), dest.name, env={"GIT_CVFS_SKIP_SMUDGE": "1"})
        self.run(dest, CVFS, "ensure", directory)


class Lfs(Tool):
    name, label = "lfs", "Git LFS"

    def available(self) -> bool:
        return shutil.which("git-lfs") is not None

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        self.git(repo, "lfs", "install", "--local")
        self.git(repo, "lfs", "track", "data/**")
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", "setup")

    def status(self, repo: Path) -> None:
        self.git(repo, "lfs", "status")

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        self.git(dest.parent, "clone", "-q", str(remote), dest.name, env={"GIT_LFS_SKIP_SMUDGE": "1"})
        self.git(dest, "lfs", "pull", "-I", f"{directory}/**")


class Dvc(Tool):
    name, label = "dvc", "DVC"
    link: str | None = None

    def available(self) -> bool:
        return Path(DVC).exists()

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        self.run(repo, DVC, "init", "-q")
        store = scratch / f"{self.name}-store"
        self.run(repo, DVC, "remote", "add", "-d", "store", str(store))
        if self.link:
            self.run(repo, DVC, "config", "cache.type", self.link)
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", "setup")

    def add_commit(self, repo: Path, paths: list[str], message: str) -> None:
        self.run(repo, DVC, "add", "-q", *paths)
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", message)

    def push(self, repo: Path, branch: str) -> None:
        self.run(repo, DVC, "push", "-q")
        self.git(repo, "push", "-q", "origin", branch)

    def switch(self, repo: Path, branch: str) -> None:
        self.git(repo, "checkout", "-q", branch)
        self.run(repo, DVC, "checkout", "-q")

    def status(self, repo: Path) -> None:
        self.run(repo, DVC, "status", "-q")

    def recheck(self, repo: Path) -> None:
        self.run(repo, DVC, "status", "-q")  # git does not see DVC's data

    def clone(self, remote: Path, dest: Path) -> None:
        self.lazy_clone(remote, dest, "")

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        super().clone(remote, dest)
        if self.link:  # a clone's cache settings are its own
            self.run(dest, DVC, "config", "--local", "cache.type", self.link)
        self.run(dest, DVC, "pull", "-q", *([directory] if directory else []))


class DvcLinks(Dvc):
    name, label = "dvc-links", "DVC links"
    link = "reflink,hardlink"


class Annex(Tool):
    name, label = "annex", "git-annex"

    def available(self) -> bool:
        return shutil.which("git-annex") is not None

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        self.git(remote, "annex", "init", "-q", "origin")
        self.git(repo, "annex", "init", "-q", "work")
        self.git(repo, "commit", "-q", "--allow-empty", "-m", "setup")

    def add_commit(self, repo: Path, paths: list[str], message: str) -> None:
        self.git(repo, "annex", "add", "-q", *paths)
        self.git(repo, "commit", "-q", "-m", message)

    def push(self, repo: Path, branch: str) -> None:
        self.git(repo, "annex", "copy", "-q", "--to", "origin", "data")
        # the copy wrote the remote's git-annex branch: sync merges both and pushes them with main
        self.git(repo, "annex", "sync", "-q", "--no-content", "--no-commit", "origin")

    def status(self, repo: Path) -> None:
        self.git(repo, "annex", "status")

    def clone(self, remote: Path, dest: Path) -> None:
        super().clone(remote, dest)
        self.git(dest, "annex", "get", "-q", "data")

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        super().clone(remote, dest)
        self.git(dest, "annex", "get", "-q", directory)


class PlainGit(Tool):
    """The baseline: the same data as git blobs, no extension. Its lazy clone is git's own
    (a partial clone, blobs fetched on demand, a sparse checkout of the one directory)."""

    name, label = "git", "plain git"

    def setup(self, repo: Path, remote: Path, scratch: Path) -> None:
        self.git(remote, "config", "uploadpack.allowFilter", "true")
        self.git(repo, "commit", "-q", "--allow-empty", "-m", "setup")

    def status(self, repo: Path) -> None:
        self.git(repo, "status", "--porcelain")

    def lazy_clone(self, remote: Path, dest: Path, directory: str) -> None:
        url = remote.as_uri()  # a plain path would be a local clone, which ignores --filter
        self.git(dest.parent, "clone", "-q", "--filter=blob:none", "--sparse", url, dest.name)
        self.git(dest, "sparse-checkout", "set", directory)


TOOLS: dict[str, type[Tool]] = {t.name: t for t in (Cvfs, Lfs, Dvc, DvcLinks, Annex, PlainGit)}


def timed(step: Callable[[], None]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def disk_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def one_round(tool: Tool, scratch: Path, big: int, files: int, size: int, out: dict[str, list[float]]) -> None:
    base = scratch / tool.name
    base.mkdir()
    remote = base / "remote.git"
    tool.git(base, "init", "-q", "--bare", str(remote))
    repo = base / "work"
    tool.git(base, "init", "-q", str(repo))
    tool.git(repo, "remote", "add", "origin", str(remote))
    tool.setup(repo, remote, base)
    tool.git(repo, "push", "-q", "-u", "origin", "main")

    measure.write_big(repo, big)
    out["add+commit 1 GiB"].append(timed(lambda: tool.add_commit(repo, ["data/big.bin"], "big")))
    out["push 1 GiB"].append(timed(lambda: tool.push(repo, "main")))
    tool.git(repo, "rm", "-q", "--cached", "-r", "--ignore-unmatch", "data/big.bin", "data/big.bin.dvc")
    (repo / "data" / "big.bin").unlink(missing_ok=True)
    (repo / "data" / "big.bin.dvc").unlink(missing_ok=True)
    tool.git(repo, "commit", "-q", "-am", "drop big", "--allow-empty")
    tool.git(repo, "push", "-q", "origin", "main")

    measure.write_tree(repo, files, size, seed=1)
    add = [f"data/d{i}" for i in range(DIRS)]
    out["add+commit 2,000"].append(timed(lambda: tool.add_commit(repo, add, "many")))
    out["push 2,000"].append(timed(lambda: tool.push(repo, "main")))
    tool.git(repo, "checkout", "-q", "-b", "changed")
    names = measure.write_tree(repo, files, size, seed=2)
    out["change 2,000, add+commit"].append(timed(lambda: tool.add_commit(repo, add, "changed")))
    out["status"].append(timed(lambda: tool.status(repo)))
    measure.touch_tree(repo, names)
    out["touch 2,000, re-check"].append(timed(lambda: tool.recheck(repo)))
    there = timed(lambda: tool.switch(repo, "main"))
    back = timed(lambda: tool.switch(repo, "changed"))
    out["switch 2,000"].append((there + back) / 2)

    clone = base / "clone"
    out["clone + materialize"].append(timed(lambda: tool.clone(remote, clone)))
    out["disk / data"].append(disk_bytes(clone) / (files * size))
    shutil.rmtree(clone, ignore_errors=True)
    out["lazy clone + 200"].append(timed(lambda: tool.lazy_clone(remote, base / "lazy", "data/d3")))
    got = sum(1 for p in (base / "lazy" / "data" / "d3").iterdir() if p.stat().st_size == size)
    if got != files // DIRS:
        raise SystemExit(f"error: {tool.name}'s lazy clone materialized {got} of {files // DIRS} files in data/d3")
    chmod_writable(base)
    shutil.rmtree(base)
    del names


def chmod_writable(path: Path) -> None:
    """git-annex and DVC leave read-only objects: make them removable."""
    subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB and 200 files, 2 rounds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, from {', '.join(TOOLS)}")
    args = parser.parse_args()
    big, files, size = (64 << 20, 200, 256 << 10) if args.quick else (1 << 30, 2000, 256 << 10)
    rounds = args.rounds or (2 if args.quick else 5)
    with tempfile.TemporaryDirectory(prefix="cvfs-bench-peers-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        global CVFS
        if not args.dev_install:  # as users run it: ./install.sh, bytecode compiled at install
            CVFS = measure.user_install(scratch)
        env = {**measure.user_env(CVFS), "HOME": str(home), "GIT_CVFS_NO_PROGRESS": "1", "DVC_NO_ANALYTICS": "1"}
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            env.pop(var, None)
        tools = [TOOLS[n](env) for n in args.tools.split(",")]
        missing = [t.label for t in tools if not t.available()]
        tools = [t for t in tools if t.available()]
        for key, value in [("user.name", "Bench"), ("user.email", "b@example.com"), ("init.defaultBranch", "main")]:
            subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
        subprocess.run([CVFS, "install", "--global"], env=env, check=True, capture_output=True)
        if shutil.which("git-lfs"):
            subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
        results: dict[str, dict[str, list[float]]] = {t.name: defaultdict(list) for t in tools}
        for r in range(rounds):
            order = tools[r % len(tools) :] + tools[: r % len(tools)]
            for tool in order:
                start = time.perf_counter()
                one_round(tool, scratch, big, files, size, results[tool.name])
                print(f"round {r + 1}: {tool.label} {time.perf_counter() - start:.0f} s", file=sys.stderr)
    report(tools, results, rounds, big, files, size, missing)


def report(
    tools: list[Tool],
    results: dict[str, dict[str, list[float]]],
    rounds: int,
    big: int,
    files: int,
    size: int,
    missing: list[str],
) -> None:
    print(f"data: one {big >> 20} MiB file, {files} x {size >> 10} KiB files; medians of {rounds} rounds")
    if missing:
        print(f"not installed, left out: {', '.join(missing)}")
    labels = [t.label for t in tools]
    ratios = [(b, f"git-cvfs/{label}") for b, label in (("lfs", "LFS"), ("git", "git")) if b in results]
    ratios = ratios if "cvfs" in results else []
    print("| workload | " + " | ".join(labels + [r for _, r in ratios]) + " |")
    print("|---|" + "---|" * (len(labels) + len(ratios)))
    for workload in WORKLOADS:
        label = (
            workload.replace("1 GiB", f"{big >> 20} MiB")
            .replace("2,000", f"{files:,}")
            .replace("+ 200", f"+ {files // DIRS}")
        )
        medians = {t.name: statistics.median(results[t.name][workload]) for t in tools}
        cells = [(f"{m:.2f}" if workload == "disk / data" else f"{m:.2f} s") for m in medians.values()]
        cells += [f"{medians['cvfs'] / medians[base]:.2f}" for base, _ in ratios]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
