"""Scale run: how git-cvfs grows with the number of managed files.

Runs the everyday operations on N small managed files for several N (default 10,000,
50,000 and 100,000) and prints, per operation, seconds, milliseconds per 1,000 files
and the peak RSS of the largest process it ran (git's or ours), so linear growth shows
as a flat per-1,000 column and flat memory as a flat RSS column. Uses the embedded
directory archive; no peers here (benchmarks/peers.py is the side-by-side comparison).

    .venv/bin/python benchmarks/scale.py                  # 10,000 / 50,000 / 100,000
    .venv/bin/python benchmarks/scale.py --sizes 2000 4000  # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import measure  # benchmarks/measure.py, beside this script
import run as bench  # benchmarks/run.py

FILE_SIZE = 2048


def run(cwd: Path, env: dict[str, str], *cmd: str) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")


def measured(cwd: Path, env: dict[str, str], *cmd: str) -> tuple[float, float]:
    """Seconds and peak RSS in MiB of the largest process `cmd` ran."""
    return measure.measured(cmd, cwd, env)


def one_size(n: int, work: Path) -> dict[str, tuple[float, float]]:
    home = work / "home"
    home.mkdir(parents=True)
    env = bench.isolated_env(home)
    for key, value in (("user.name", "scale"), ("user.email", "s@e"), ("init.defaultBranch", "main")):
        run(work, env, "git", "config", "--global", key, value)
    run(work, env, bench.CVFS, "install", "--global", "--skip-repo")
    remote, repo = work / "remote.git", work / "repo"
    run(work, env, "git", "init", "-q", "--bare", str(remote))
    run(work, env, "git", "init", "-q", str(repo))
    run(repo, env, "git", "remote", "add", "origin", str(remote))
    run(repo, env, bench.CVFS, "init", "--archive", (work / "archive").as_uri(), "--create")
    run(repo, env, "git", "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    run(repo, env, bench.CVFS, "track", "data/**")
    run(repo, env, "git", "add", "-A")
    run(repo, env, "git", "commit", "-q", "-m", "setup")
    for i in range(n):
        path = repo / "data" / f"d{i // 500:04d}" / f"f{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(8, "little") + os.urandom(FILE_SIZE - 8))
    subprocess.run(["sync"], check=False)
    t: dict[str, tuple[float, float]] = {}
    t["git add"] = measured(repo, env, "git", "add", "-A")
    t["git commit (hook archives)"] = measured(repo, env, "git", "commit", "-q", "-m", "data")
    t["git status"] = measured(repo, env, "git", "status", "--porcelain")
    t["git cvfs status"] = measured(repo, env, bench.CVFS, "status")
    t["git cvfs reconcile"] = measured(repo, env, bench.CVFS, "reconcile")
    t["git push (pre-push checks all)"] = measured(repo, env, "git", "push", "-q", "origin", "main")
    bench.set_aside(repo / "data", work)  # not deleted: see set_aside in run.py (ext4 without a journal)
    bench.quiesce()
    t["git checkout -- data"] = measured(repo, env, "git", "checkout", "--", "data")
    t["git status after checkout"] = measured(repo, env, "git", "status", "--porcelain")
    run(repo, env, "git", "commit", "-q", "--allow-empty", "--no-verify", "-m", "x")
    run(repo, env, "git", "-c", "core.hooksPath=/dev/null", "push", "-q", "origin", "main")
    t["git cvfs push (all archived)"] = measured(repo, env, bench.CVFS, "push")
    bench.quiesce()
    t["lazy clone (refs only)"] = measured(
        work, {**env, "GIT_CVFS_SKIP_SMUDGE": "1"}, "git", "clone", "-q", str(remote), "lazy"
    )
    t["git cvfs ensure data"] = measured(work / "lazy", env, bench.CVFS, "ensure", "data")
    t["git cvfs reconcile (clone)"] = measured(work / "lazy", env, bench.CVFS, "reconcile")
    got = sum(len(files) for _, _, files in os.walk(work / "lazy" / "data"))
    sizes = {p.stat().st_size for p in (work / "lazy" / "data" / "d0000").iterdir()}
    if got != n or sizes != {FILE_SIZE}:
        raise SystemExit(f"error: the lazy clone holds {got} files of sizes {sizes}, not {n} of {FILE_SIZE} bytes")
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    args = parser.parse_args()
    base = args.work or Path(tempfile.mkdtemp(prefix="cvfs-scale-"))
    if not args.dev_install:
        bench.CVFS = measure.user_install(base)
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for n in args.sizes:
        print(f"{n} files...", file=sys.stderr, flush=True)
        work = base / str(n)
        results[n] = one_size(n, work)
        bench.release_space(work)  # the trees go after the last size, as in run.py
    ops = list(next(iter(results.values())))
    header = " | ".join(f"{n:,} files | ms per 1,000 | peak RSS" for n in args.sizes)
    print(f"| operation | {header} |")
    print("|---|" + "---|---|---|" * len(args.sizes))
    for op in ops:
        cells = " | ".join(
            f"{results[n][op][0]:.2f} s | {results[n][op][0] / n * 1e6:.0f} | {results[n][op][1]:.0f} MiB"
            for n in args.sizes
        )
        print(f"| {op} | {cells} |")
    if args.work is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
