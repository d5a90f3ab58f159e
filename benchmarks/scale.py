"""Scale run: how git-cvfs grows with the number of managed files.

Runs the everyday operations on N small managed files for several N (default 12,500,
25,000 and 50,000) and prints seconds per operation and per 1,000 files, so linear
growth shows as a flat per-1,000 column. Uses the embedded file archive; no LFS here
(benchmarks/run.py is the side-by-side comparison).

    .venv/bin/python benchmarks/scale.py                  # 12,500 / 25,000 / 50,000
    .venv/bin/python benchmarks/scale.py --sizes 2000 4000  # quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench  # benchmarks/run.py, beside this script

FILE_SIZE = 2048


def run(cwd: Path, env: dict[str, str], *cmd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def one_size(n: int, work: Path) -> dict[str, float]:
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
    run(repo, env, bench.CVFS, "init", "--archive", (work / "archive").as_uri())
    run(repo, env, "git", "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    run(repo, env, bench.CVFS, "track", "data/**")
    run(repo, env, "git", "add", "-A")
    run(repo, env, "git", "commit", "-q", "-m", "setup")
    for i in range(n):
        path = repo / "data" / f"d{i // 500:04d}" / f"f{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(i.to_bytes(8, "little") + os.urandom(FILE_SIZE - 8))
    subprocess.run(["sync"], check=False)
    t: dict[str, float] = {}
    t["git add"] = run(repo, env, "git", "add", "-A")
    t["git commit (hook archives)"] = run(repo, env, "git", "commit", "-q", "-m", "data")
    t["git status"] = run(repo, env, "git", "status", "--porcelain")
    t["git cvfs reconcile"] = run(repo, env, bench.CVFS, "reconcile")
    t["git push (pre-push checks all)"] = run(repo, env, "git", "push", "-q", "origin", "main")
    bench.set_aside(repo / "data", work)  # not deleted: see set_aside in run.py (ext4 without a journal)
    bench.quiesce()
    t["git checkout -- data"] = run(repo, env, "git", "checkout", "--", "data")
    t["git status after checkout"] = run(repo, env, "git", "status", "--porcelain")
    run(repo, env, "git", "commit", "-q", "--allow-empty", "--no-verify", "-m", "x")
    run(repo, env, "git", "-c", "core.hooksPath=/dev/null", "push", "-q", "origin", "main")
    t["git cvfs push (all archived)"] = run(repo, env, bench.CVFS, "push")
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[12_500, 25_000, 50_000])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    args = parser.parse_args()
    base = args.work or Path(tempfile.mkdtemp(prefix="cvfs-scale-"))
    if not args.dev_install:
        bench.CVFS = bench.user_install(base)
    results: dict[int, dict[str, float]] = {}
    for n in args.sizes:
        print(f"{n} files...", file=sys.stderr, flush=True)
        work = base / str(n)
        results[n] = one_size(n, work)
        bench.release_space(work)  # the trees go after the last size, as in run.py
    ops = list(next(iter(results.values())))
    header = " | ".join(f"{n:,} files | s per 1,000" for n in args.sizes)
    print(f"| operation | {header} |")
    print("|---|" + "---|---|" * len(args.sizes))
    for op in ops:
        cells = " | ".join(f"{results[n][op]:.2f} s | {results[n][op] / n * 1000:.3f}" for n in args.sizes)
        print(f"| {op} | {cells} |")
    if args.work is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
