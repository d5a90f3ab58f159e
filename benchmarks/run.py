"""git-cvfs and Git LFS side by side, on the same data, alternating, in one run.

    .venv/bin/python benchmarks/run.py            # full size (1 GiB, 2,000 x 256 KiB), 5 rounds
    .venv/bin/python benchmarks/run.py --quick    # 64 MiB and 200 files, for development

Each round runs every workload for both tools in fresh directories, alternating
which tool goes first, because writes on this VM drift from run to run; every
timed step starts after a sync. The clones and the push run for both tools back
to back, and plain git's status alternates with git-cvfs's (on the clean tree, and
on either side of git-cvfs's first after its checkout), so that each such pair is
measured at the same moment (see Round). Nothing is deleted until the
last step is timed (see set_aside). The table gives medians, the cvfs/LFS ratio
and each round's ratio. Peak memory is the largest RSS of any process in the
command (git or a filter), read with getrusage. git-cvfs is installed into the
scratch directory with ./install.sh, as a user installs it (--dev-install: this
venv's editable install instead; --python: on that interpreter, as PYTHON=... does
for install.sh). The interpreter matters: see docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import measure  # benchmarks/measure.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
# The git-cvfs under test: main() replaces it with a user install (see measure.user_install).
CVFS = str(Path(sys.executable).parent / "git-cvfs")


def interpreter(cvfs: str) -> str:
    """The Python that runs this git-cvfs: its path and version, for the report."""
    python = Path(cvfs).parent / "python"
    out = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version.split()[0], sys._base_executable)"],
        capture_output=True,
        text=True,
        check=True,
    )
    version, base = out.stdout.split(maxsplit=1)
    return f"Python {version} ({os.path.realpath(base.strip())})"


def host_steal_ticks() -> int | None:
    """Time the hypervisor gave this VM's CPUs to someone else while they wanted to run
    (/proc/stat's steal, summed over CPUs, in clock ticks); None where there is no such count."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def steal_share(before: int | None, after: int | None, seconds: float) -> float | None:
    """Stolen CPU time over the CPU time the machine had, between two host_steal_ticks()."""
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / (os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1) * seconds)


def isolated_env(home: Path) -> dict[str, str]:
    """A throwaway HOME, no system git config, git-cvfs from this venv first on PATH."""
    return {
        **measure.user_env(CVFS),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CVFS_NO_PROGRESS": "1",
    }


class Bench:
    def __init__(self, work: Path, tool: str) -> None:
        self.tool = tool
        self.work = work
        self.last_steal: float | None = None  # host steal share during the last command run
        self.home = work / "home"
        self.home.mkdir(parents=True)
        self.env = isolated_env(self.home)
        for key, value in (("user.name", "bench"), ("user.email", "b@e"), ("init.defaultBranch", "main")):
            self.git(work, "config", "--global", key, value)
        if tool == "cvfs":
            self.run(work, [CVFS, "install", "--global", "--skip-repo"])
        else:
            self.run(work, ["git", "lfs", "install", "--skip-repo"])

    def run(self, cwd: Path, cmd: list[str], env: dict[str, str] | None = None) -> float:
        steal = host_steal_ticks()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env={**self.env, **(env or {})}, capture_output=True)
        elapsed = time.perf_counter() - start
        self.last_steal = steal_share(steal, host_steal_ticks(), elapsed)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.tool}: {' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
        return elapsed

    def git(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> float:
        return self.run(cwd, ["git", *args], env)

    def peak_rss_mb(self, cwd: Path, cmd: list[str]) -> tuple[float, float]:
        log = self.work / "rss"
        seconds = self.run(cwd, measure.wrapped(log, cmd))  # timed here too, for the steal share
        return seconds, measure.read_log(log)[1]

    def new_repo(self, name: str) -> tuple[Path, Path]:
        remote = self.work / f"{name}-remote.git"
        repo = self.work / name
        self.git(self.work, "init", "-q", "--bare", str(remote))
        self.git(self.work, "init", "-q", str(repo))
        self.git(repo, "remote", "add", "origin", str(remote))
        if self.tool == "cvfs":
            self.run(repo, [CVFS, "init", "--archive", (self.work / "archive").as_uri()])
            self.git(repo, "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
            self.run(repo, [CVFS, "track", "data/**"])
        else:
            self.git(repo, "lfs", "install", "--local")
            self.git(repo, "lfs", "track", "data/**")
            self.git(repo, "config", "lfs.url", remote.as_uri())  # LFS's built-in file:// transfer
        self.git(repo, "add", ".gitattributes", *([".cvfs"] if self.tool == "cvfs" else []))
        self.git(repo, "commit", "-q", "-m", "setup")
        return repo, remote

    def clone_env(self, lazy: bool) -> dict[str, str]:
        if not lazy:
            return {}
        return {"GIT_CVFS_SKIP_SMUDGE": "1"} if self.tool == "cvfs" else {"GIT_LFS_SKIP_SMUDGE": "1"}

    def lfs_config_for_clone(self, remote: Path) -> list[str]:
        return ["-c", f"lfs.url={remote.as_uri()}"] if self.tool == "lfs" else []


def du(path: Path) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def make_data(dest: Path, big: int, count: int, small: int) -> None:
    (dest / "many").mkdir(parents=True)
    block = os.urandom(1 << 20)
    with open(dest / "big.bin", "wb") as f:
        for i in range(big // len(block)):
            f.write(i.to_bytes(8, "little") + block[8:])
    for i in range(count):
        (dest / "many" / f"f{i:05d}.bin").write_bytes(os.urandom(small))


Results = dict[str, dict[str, list[float]]]  # workload -> tool -> one figure per round


class Round:
    """One tool's part of a round, in its own directory. The steps each tool does alone come
    first; the clones and the push then run for both tools back to back (see main), so that
    each pair of figures is taken at the same moment of this VM, whose speed drifts by more
    than the differences measured over the minute a tool's part takes."""

    def __init__(self, tool: str, work: Path, results: Results, steal: Results) -> None:
        self.tool = tool
        self.work = work
        self.results = results
        self.steal = steal
        self.b = Bench(work, tool)
        self.remote = work / "unset"

    def timed(self, workload: str, seconds: float) -> None:
        """A timed step's seconds, and the host's steal while it ran (Bench.run just measured)."""
        self.results[workload][self.tool].append(seconds)
        if self.b.last_steal is not None:
            self.steal[workload][self.tool].append(self.b.last_steal)

    def alone(self, data: Path, plain: PlainRepo | None) -> None:
        """Add and checkout of one large file; add, push, disk, status and checkout of many.
        plain: a plain git repository of the same files, whose status alternates with
        git-cvfs's on the clean tree and is taken on either side of git-cvfs's first after
        its checkout."""
        b, timed = self.b, self.timed
        # One large file: add, then checkout (from what the tool keeps locally), with peak memory.
        repo, _ = b.new_repo("big")
        shutil.copyfile(data / "big.bin", repo / "data.tmp")
        (repo / "data").mkdir()
        os.replace(repo / "data.tmp", repo / "data" / "big.bin")
        quiesce()
        timed("git add: one large file", b.git(repo, "add", "data/big.bin"))
        b.git(repo, "commit", "-q", "-m", "big")
        (repo / "data" / "big.bin").unlink()
        quiesce()
        seconds, rss = b.peak_rss_mb(repo, ["git", "checkout", "--", "data/big.bin"])
        timed("checkout: one large file", seconds)
        self.results["peak RSS MB: that checkout"][self.tool].append(rss)
        set_aside(repo, self.work)

        # Many small files: add, commit + push, disk, status, checkout, status.
        repo, self.remote = b.new_repo("many")
        shutil.copytree(data / "many", repo / "data")
        quiesce()
        timed("git add: many files", b.git(repo, "add", "data"))
        b.git(repo, "commit", "-q", "-m", "many")
        b.git(repo, "push", "-q", "origin", "main")
        data_bytes = sum(p.stat().st_size for p in (data / "many").iterdir())
        self.results["local disk / data after add+commit+push"][self.tool].append(du(repo) / data_bytes)
        quiesce()
        ours, theirs = [], []
        for _ in range(7):
            ours.append(b.git(repo, "status", "--porcelain"))
            if plain is not None:
                theirs.append(plain.status())
        self.results["git status: clean tree"][self.tool].append(statistics.median(ours))
        if plain is not None:
            plain.per_round["git status: clean tree"].append(statistics.median(theirs))
        set_aside(repo / "data", self.work)
        quiesce()
        timed("checkout: many files", b.git(repo, "checkout", "--", "data"))
        quiesce()
        self.status_between(plain, "git status: first after checkout", repo)
        # What the clones do not need goes now, as the whole round's files go at its end, so
        # that each tool's part starts after a release: page cache and disk blocks freed.
        release_space(self.work / "set-aside")

    def clone(self, lazy: bool) -> None:
        name = "clone-lazy" if lazy else "clone"
        extra = self.b.lfs_config_for_clone(self.remote)
        quiesce()
        seconds = self.b.git(self.work, *extra, "clone", "-q", str(self.remote), name, env=self.b.clone_env(lazy))
        self.timed("lazy clone (refs only)" if lazy else "clone + materialize many files", seconds)

    def materialize_lazy_clone(self, plain: PlainRepo | None) -> None:
        """Every file of the lazy clone: `git cvfs ensure` against `git lfs pull`, then the first
        status after it, git-cvfs's beside plain git's taken just before and just after it."""
        clone = self.work / "clone-lazy"
        if self.tool == "cvfs":
            cmd = ["git", "cvfs", "ensure", "data"]
        else:
            cmd = ["git", *self.b.lfs_config_for_clone(self.remote), "lfs", "pull"]
        quiesce()
        self.timed("materialize a lazy clone: ensure / git lfs pull", self.b.run(clone, cmd))
        quiesce()
        self.status_between(plain, "git status: first after that", clone)

    def status_between(self, plain: PlainRepo | None, workload: str, repo: Path) -> None:
        """The tool's status in `repo`; with `plain`, plain git's status on its clean tree just
        before and just after it, whose mean plain keeps under the same workload."""
        before = plain.status() if plain is not None else 0.0
        self.timed(workload, self.b.git(repo, "status", "--porcelain"))
        if plain is not None:
            plain.per_round[workload].append((before + plain.status()) / 2)

    def push_nothing_new(self) -> None:
        clone, events = self.work / "clone", self.work / "push.trace2.json"
        self.b.git(clone, "commit", "-q", "--allow-empty", "-m", "nothing new")
        quiesce()
        seconds = self.b.git(clone, "push", "-q", "origin", "main", env={"GIT_TRACE2_EVENT": str(events)})
        self.timed("push with nothing new to upload", seconds)
        self.results["its pre-push hook"][self.tool].append(hook_seconds(events, "pre-push"))


def hook_seconds(events: Path, hook: str) -> float:
    """How long git waited for `hook`, from its trace2 events (child_start to child_exit)."""
    records = [json.loads(line) for line in events.read_text().splitlines()]
    top = records[0]["sid"]  # the git command itself, not the processes it starts
    ours = [r for r in records if r["sid"] == top]
    started = [r["child_id"] for r in ours if r["event"] == "child_start" and r.get("hook_name") == hook]
    for r in ours:
        if started and r["event"] == "child_exit" and r["child_id"] == started[0]:
            return float(r["t_rel"])
    raise RuntimeError(f"no {hook} hook in {events}")


def set_aside(path: Path, work: Path) -> None:
    """Move a tree out of the way instead of deleting it. On ext4 without a journal (this VM's
    root filesystem), an inode deleted in the last 60 s (300 s while its inode table block is
    unwritten) is not reused, and each file created meanwhile scans past it: perf put a quarter
    of a many-file checkout's CPU, and half of a lazy clone's, in that scan, more or less
    depending on what the step before, or the other tool, had just deleted. The tree goes
    under `work`, outside any repository, where no git status sees it."""
    trash = work / "set-aside"
    trash.mkdir(exist_ok=True)
    path.rename(trash / f"{len(os.listdir(trash))}-{path.name}")


def release_space(root: Path) -> None:
    """Give back the disk a finished round used while keeping its inodes (see set_aside): every
    file is emptied now; the trees themselves go when the last step has been timed."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            try:
                os.truncate(path, 0)
            except PermissionError:  # read-only objects (git's, the archive's)
                os.chmod(path, 0o600)
                os.truncate(path, 0)


def quiesce() -> None:
    """Write back what the previous step left dirty (copies, deletes, the other tool's run)
    before each timed step, so no step is timed against another's backlog. Changes no mtime."""
    os.sync()


class PlainRepo:
    """Plain git, no filter, on the same files, committed."""

    def __init__(self, data: Path, work: Path) -> None:
        work.mkdir(parents=True)
        self.work = work
        self.env = {**os.environ, "HOME": str(work), "GIT_CONFIG_NOSYSTEM": "1"}
        self.repo = work / "r"
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True, env=self.env)
        shutil.copytree(data / "many", self.repo / "data")
        self.git("add", "data")
        self.git("-c", "user.name=b", "-c", "user.email=b@e", "commit", "-q", "-m", "data")
        # workload -> one figure a round, set beside git-cvfs's: the median of the statuses
        # alternating with its clean-tree ones, or the mean of the two around one of its firsts.
        self.per_round: defaultdict[str, list[float]] = defaultdict(list)

    def git(self, *args: str) -> float:
        start = time.perf_counter()
        subprocess.run(["git", *args], cwd=self.repo, check=True, env=self.env, capture_output=True)
        return time.perf_counter() - start

    def status(self) -> float:
        return self.git("status", "--porcelain")


def plain_first_after_checkout(data: Path, work: Path) -> float:
    """Plain git's first status after a checkout of the files: it re-reads the files written
    in its index's second ("racily clean"), as git-cvfs's first must not."""
    plain = PlainRepo(data, work)
    set_aside(plain.repo / "data", work)
    plain.git("checkout", "--", "data")
    quiesce()
    first = plain.status()
    release_space(work)
    return first


def startup(cmd: list[str], cwd: Path) -> float:
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=measure.user_env(), capture_output=True, check=False)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}"
    if unit == "MB":
        return f"{value:.0f}"
    return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB and 200 files instead of 1 GiB and 2,000")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tool; the table gives their medians")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temp dir, removed after)")
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    parser.add_argument("--python", help="the Python to install git-cvfs with (install.sh's PYTHON=); default: its own")
    args = parser.parse_args()
    if shutil.which("git-lfs") is None:
        print("error: git-lfs is not installed\nhint: apt-get install git-lfs", file=sys.stderr)
        return 2
    big, count, small = ((64 << 20), 200, 256 << 10) if args.quick else ((1 << 30), 2000, 256 << 10)
    scratch = Path(args.work or tempfile.mkdtemp(prefix="cvfs-bench-"))
    data = scratch / "data"
    global CVFS
    if not args.dev_install:
        CVFS = measure.user_install(scratch, args.python)
    print(f"git-cvfs runs on {interpreter(CVFS)}", file=sys.stderr)
    print(f"data: one {big >> 20} MiB file, {count} x {small >> 10} KiB files; {args.rounds} rounds", file=sys.stderr)
    make_data(data, big, count, small)
    results: Results = defaultdict(lambda: defaultdict(list))
    steal: Results = defaultdict(lambda: defaultdict(list))
    # Plain git's status on a clean tree alternates with git-cvfs's in each round (Round.alone).
    beside = PlainRepo(data, scratch / "plain-beside")
    run_steal, run_start = host_steal_ticks(), time.perf_counter()
    for i in range(args.rounds):
        order = ("cvfs", "lfs") if i % 2 == 0 else ("lfs", "cvfs")
        rounds = {tool: Round(tool, scratch / f"r{i}-{tool}", results, steal) for tool in order}
        for tool in order:
            print(f"round {i + 1}: {tool}", file=sys.stderr)
            rounds[tool].alone(data, beside if tool == "cvfs" else None)
        print(f"round {i + 1}: clones and push, both tools", file=sys.stderr)
        for lazy in (False, True):
            for tool in order:
                rounds[tool].clone(lazy)
        for tool in order:
            rounds[tool].materialize_lazy_clone(beside if tool == "cvfs" else None)
        for tool in order:
            rounds[tool].push_nothing_new()
        for tool in order:  # only when both pushes are timed: emptying files is disk work too
            release_space(rounds[tool].work)
    run_steal_share = steal_share(run_steal, host_steal_ticks(), time.perf_counter() - run_start)
    release_space(beside.work)
    plain_first = statistics.median(plain_first_after_checkout(data, scratch / f"plain{i}") for i in range(3))
    version = startup([CVFS, "--version"], scratch)
    rows: list[tuple[str, ...]] = []
    for name, by_tool in results.items():
        unit = "x" if "disk" in name else ("MB" if "RSS" in name else "s")
        c, lfs = statistics.median(by_tool["cvfs"]), statistics.median(by_tool["lfs"])
        paired = ", ".join(f"{a / b:.2f}" for a, b in zip(by_tool["cvfs"], by_tool["lfs"], strict=True) if b)
        stolen = " / ".join(
            f"{statistics.median(steal[name][t]):.0%}" if steal[name][t] else "-" for t in ("cvfs", "lfs")
        )
        rows.append((name, fmt(c, unit), fmt(lfs, unit), f"{c / lfs:.2f}" if lfs else "-", paired, stolen))
    print("\n| workload | git-cvfs | Git LFS | cvfs/LFS | each round | host steal, cvfs / LFS |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    if run_steal_share is not None:
        print(
            f"\nThe hypervisor took {run_steal_share:.0%} of this machine's CPU time over the rounds (/proc/stat steal)."
        )
    print("\n| against plain git, same files | plain git | git-cvfs | git-cvfs / plain git | each round |")
    print("|---|---|---|---|---|")
    around = "against plain git's on a clean tree just before and after it"
    for label, workload in (
        ("git status: clean tree, alternating", "git status: clean tree"),
        (f"git status: first after checkout, {around}", "git status: first after checkout"),
        (f"git status: first after `ensure` of a lazy clone, {around}", "git status: first after that"),
    ):
        ours, theirs = results[workload]["cvfs"], beside.per_round[workload]
        mine, plain_git = statistics.median(ours), statistics.median(theirs)
        paired = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True))
        print(f"| {label} | {plain_git * 1000:.1f} ms | {mine * 1000:.1f} ms | {mine / plain_git:.2f} | {paired} |")
    first = statistics.median(results["git status: first after checkout"]["cvfs"])
    print(
        f"| git status: first after checkout, against plain git's first after its checkout | {plain_first * 1000:.1f} ms"
        f" | {first * 1000:.1f} ms | {first / plain_first:.2f} | |"
    )
    print(f"| `git-cvfs --version` | | {version * 1000:.0f} ms | | |")
    if args.work is None:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        for done in [*scratch.glob("r*-*"), *scratch.glob("plain*")]:
            shutil.rmtree(done, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
