"""What verifying archived bytes costs: a git-cvfs from before it (a git revision) against this
checkout, on the same workloads, alternating, in one run.

    .venv/bin/python benchmarks/verify_cost.py --before 53a7ba9           # 512 MiB, 3 rounds
    .venv/bin/python benchmarks/verify_cost.py --before 53a7ba9 --size 64  # quicker

Both are installed with ./install.sh into a scratch directory. With a directory archive:
commit (the pre-commit upload, which now hashes the copy it writes), offload (which now
hashes the archive's copy), guard (which now does too, where it read records), and ensure
in a lazy clone (unchanged: every download was always hashed).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def install(src: Path, scratch: Path) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(scratch / "home"),
        "GIT_CVFS_HOME": str(scratch / "install"),
        "GIT_CVFS_BIN": str(scratch / "bin"),
    }
    subprocess.run(["bash", str(src / "install.sh"), "--no-git-config"], env=env, check=True, capture_output=True)
    return str(scratch / "install" / "venv" / "bin" / "git-cvfs")


def checkout(rev: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def round_for(cvfs: str, work: Path, data: Path) -> dict[str, float]:
    home = work / "home"
    home.mkdir(parents=True)
    env = {
        "PATH": f"{Path(cvfs).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "share"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CVFS_NO_PROGRESS": "1",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
    }
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([cvfs, "install", "--global"], env=env, cwd=work, check=True, capture_output=True)
    repo, remote, archive = work / "repo", work / "remote.git", work / "archive"
    archive.mkdir()
    subprocess.run([*git, "init", "-q", "--bare", str(remote)], env=env, check=True)
    subprocess.run([*git, "init", "-q", str(repo)], env=env, check=True)
    subprocess.run([cvfs, "init", "--archive", archive.as_uri()], cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run([cvfs, "track", "data/**"], cwd=repo, env=env, check=True, capture_output=True)
    (repo / "data").mkdir()
    os.link(data, repo / "data" / "big.bin")
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    times = {"commit (upload)": run(["git", "commit", "-q", "-m", "data"], repo, env)}
    subprocess.run(["git", "remote", "add", "origin", str(remote)], cwd=repo, env=env, check=True)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo, env=env, check=True)
    times["guard"] = run([cvfs, "guard", "data/big.bin"], repo, env)
    times["offload"] = run([cvfs, "offload", "data/big.bin"], repo, env)
    lazy_env = {**env, "GIT_CVFS_SKIP_SMUDGE": "1"}
    subprocess.run(["git", "clone", "-q", str(remote), str(work / "lazy")], env=lazy_env, check=True)
    times["ensure"] = run([cvfs, "ensure", "data"], work / "lazy", env)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision of git-cvfs before the change")
    parser.add_argument("--size", type=int, default=512, help="MiB of the file (default 512)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvfs-verify-cost-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        scratch = Path(tmp)
        builds = {
            "before": install(checkout(args.before, scratch / "src-before"), scratch / "before"),
            "after": install(ROOT, scratch / "after"),
        }
        data = scratch / "data.bin"
        rng = random.Random(1)
        with open(data, "wb") as f:
            for _ in range(args.size):
                f.write(rng.randbytes(1 << 20))
        results: dict[str, dict[str, list[float]]] = {name: {} for name in builds}
        for n in range(args.rounds):
            order = list(builds) if n % 2 == 0 else list(reversed(builds))
            for name in order:
                for step, seconds in round_for(builds[name], scratch / f"r{n}-{name}", data).items():
                    results[name].setdefault(step, []).append(seconds)
        print(f"{args.size} MiB file, directory archive, medians of {args.rounds} alternating rounds")
        print(f"{'step':<18} {'before':>8} {'after':>8} {'after/before':>13}")
        for step in results["after"]:
            b, a = statistics.median(results["before"][step]), statistics.median(results["after"][step])
            print(f"{step:<18} {b:>7.2f}s {a:>7.2f}s {a / b:>13.2f}")


if __name__ == "__main__":
    main()
