"""Reading through `git cvfs mount` against materializing with `git cvfs ensure`, in one run.

    .venv/bin/python benchmarks/mount.py            # one 1 GiB managed file, 3 rounds
    .venv/bin/python benchmarks/mount.py --size 256MiB --rounds 5

A repository with one large managed file on a directory archive is cloned lazily
(GIT_CVFS_SKIP_SMUDGE=1: the file stays a ref, the cache is empty). Each round, in fresh
clones, alternating which goes first:

- time to first `ls`: `git cvfs mount DIR` until `os.listdir(DIR)` returns;
- time to first byte: opening the file in the mount and reading one byte (the whole object
  is fetched and verified before any byte is served), against `git cvfs ensure FILE` then
  reading its first byte;
- a full read: the whole file through the mount (after the first byte) against reading
  the materialized file (both from the page cache or disk as the machine has them), and
  the same read again (the mount lets the kernel cache a file's pages: a commit never changes);
- the daemon's peak RSS (VmHWM) after the whole file was read through it.

Needs /dev/fuse and fuse3. Prints a markdown table of medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CVFS = str(Path(sys.executable).parent / "git-cvfs")
CHUNK = 1 << 20


def parse_size(text: str) -> int:
    """1GiB, 256MiB, 64M, 1000000: powers of 1024."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?", text.strip(), re.IGNORECASE)
    if m is None:
        raise SystemExit(f"error: invalid size {text!r}\nhint: write it as 1GiB, 256MiB or a number of bytes")
    return int(float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()])


def run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, check=True, capture_output=True, text=True)


def setup(scratch: Path, size: int) -> tuple[Path, dict[str, str]]:
    home = scratch / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": f"{Path(CVFS).parent}:{os.environ['PATH']}",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CVFS_NO_PROGRESS": "1",
    }
    for key, value in (("user.name", "Bench"), ("user.email", "bench@example.invalid"), ("init.defaultBranch", "main")):
        run(scratch, "git", "config", "--global", key, value, env=env)
    run(scratch, CVFS, "install", "--global", env=env)
    src = scratch / "src"
    run(scratch, "git", "init", "-q", str(src), env=env)
    run(scratch, "git", "init", "-q", "--bare", "-b", "main", str(scratch / "remote.git"), env=env)
    run(src, CVFS, "init", "--archive", (scratch / "archive").as_uri(), "--create", env=env)
    run(src, CVFS, "track", "data/**", env=env)
    (src / "data").mkdir()
    with open(src / "data" / "big.bin", "wb") as out:
        left = size
        while left:
            n = min(left, 64 << 20)
            out.write(os.urandom(n))
            left -= n
    run(src, "git", "add", "-A", env=env)
    run(src, "git", "commit", "-q", "-m", "data", env=env)
    run(src, "git", "remote", "add", "origin", str(scratch / "remote.git"), env=env)
    run(src, "git", "push", "-q", "origin", "main", env=env)
    return scratch / "remote.git", env


def lazy_clone(remote: Path, dest: Path, env: dict[str, str]) -> Path:
    run(dest.parent, "git", "clone", "-q", str(remote), dest.name, env={**env, "GIT_CVFS_SKIP_SMUDGE": "1"})
    run(dest, CVFS, "trust", "--yes", env=env)
    return dest


def read_all(path: Path) -> int:
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            total += len(chunk)
    return total


def through_mount(clone: Path, env: dict[str, str]) -> dict[str, float]:
    mnt = clone.parent / f"{clone.name}-mnt"
    mnt.mkdir()
    start = time.perf_counter()
    run(clone, CVFS, "mount", str(mnt), env=env)
    os.listdir(mnt)
    first_ls = time.perf_counter() - start
    try:
        start = time.perf_counter()
        with open(mnt / "data" / "big.bin", "rb", buffering=0) as f:
            f.read(1)
        ttfb = time.perf_counter() - start
        start = time.perf_counter()
        read_all(mnt / "data" / "big.bin")
        full = time.perf_counter() - start
        start = time.perf_counter()
        read_all(mnt / "data" / "big.bin")
        again = time.perf_counter() - start
        status = run(clone, CVFS, "mount", "--status", "--json", str(mnt), env=env).stdout
        pid = int(status.split('"pid":')[1].split(",")[0])
        with open(f"/proc/{pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    finally:
        run(clone, CVFS, "umount", str(mnt), env=env)
    return {"first_ls": first_ls, "ttfb": ttfb, "full": full, "again": again, "rss": hwm}


def materialized(clone: Path, env: dict[str, str]) -> dict[str, float]:
    start = time.perf_counter()
    run(clone, CVFS, "ensure", "data/big.bin", env=env)
    with open(clone / "data" / "big.bin", "rb", buffering=0) as f:
        f.read(1)
    ttfb = time.perf_counter() - start
    start = time.perf_counter()
    read_all(clone / "data" / "big.bin")
    full = time.perf_counter() - start
    start = time.perf_counter()
    read_all(clone / "data" / "big.bin")
    return {"ttfb": ttfb, "full": full, "again": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="cvfs-mount-bench-") as tmp:
        scratch = Path(tmp)
        remote, env = setup(scratch, size)
        mount_runs: list[dict[str, float]] = []
        ensure_runs: list[dict[str, float]] = []
        for n in range(args.rounds):
            order = ("mount", "ensure") if n % 2 == 0 else ("ensure", "mount")
            for which in order:
                clone = lazy_clone(remote, scratch / f"{which}-{n}", env)
                subprocess.run(["sync"], check=True)
                if which == "mount":
                    mount_runs.append(through_mount(clone, env))
                else:
                    ensure_runs.append(materialized(clone, env))
                subprocess.run(["rm", "-rf", str(clone)], check=True)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    mib = size / (1 << 20)
    print(f"one {mib:.0f} MiB managed file, directory archive, medians of {args.rounds} alternating rounds\n")
    print("| measure | through the mount | ensure, then the work tree | mount/ensure |")
    print("|---|---|---|---|")
    print(f"| time to first `ls` | {med(mount_runs, 'first_ls') * 1000:.0f} ms | | |")
    ttfb_m, ttfb_e = med(mount_runs, "ttfb"), med(ensure_runs, "ttfb")
    print(f"| time to first byte | {ttfb_m:.2f} s | {ttfb_e:.2f} s | {ttfb_m / ttfb_e:.2f} |")
    full_m, full_e = med(mount_runs, "full"), med(ensure_runs, "full")
    print(
        f"| full read after the first byte | {full_m:.2f} s ({mib / full_m:.0f} MiB/s) | "
        f"{full_e:.2f} s ({mib / full_e:.0f} MiB/s) | {full_m / full_e:.2f} |"
    )
    again_m, again_e = med(mount_runs, "again"), med(ensure_runs, "again")
    print(
        f"| the same file read again (an epoch) | {again_m:.2f} s ({mib / again_m:.0f} MiB/s) | "
        f"{again_e:.2f} s ({mib / again_e:.0f} MiB/s) | {again_m / again_e:.2f} |"
    )
    print(f"| daemon peak RSS | {med(mount_runs, 'rss') / (1 << 20):.0f} MB | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
