"""`git cvfs migrate import` against `git lfs migrate import` on the same history, in one run.

    .venv/bin/python benchmarks/migrate.py                      # 1,000 commits, 2 GiB of large blobs
    .venv/bin/python benchmarks/migrate.py --commits 200 --blob 1MiB --rounds 3

The history is written once with git fast-import: each commit changes one of 20 large files
(a new random blob of --blob bytes) and a small text file, so the large-blob history is
commits x blob. Each round copies it afresh for each tool, alternating which goes first:

- git-cvfs: `git cvfs init --archive file://…` committed, then `migrate import --everything`
  (hashes every blob, archives it in a directory archive, verifies, rewrites, moves the work tree);
- Git LFS: `git lfs migrate import --everything --include='*.bin'` (hashes every blob into
  .git/lfs/objects, rewrites; no server is involved).

Reports wall time and the peak RSS of the largest process each tool ran (ru_maxrss of the
waited-for children, benchmarks/measure.py), and checks that git-cvfs's result holds no large blob.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import measure  # benchmarks/measure.py, beside this script

CVFS = str(Path(sys.executable).parent / "git-cvfs")
FILES = 20


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1] if text[-1:] in units else ""
    return int(float(text[: len(text) - len(unit)]) * units[unit])


def build_history(repo: Path, commits: int, blob: int) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=repo, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    rng = random.Random(1)
    for i in range(commits):
        data = rng.randbytes(blob)
        note = f"run {i}\n".encode()
        msg = f"run {i}".encode()
        proc.stdin.write(
            b"commit refs/heads/main\ncommitter Bench <b@example.com> %d +0000\ndata %d\n%s\n"
            % (1700000000 + i, len(msg), msg)
        )
        proc.stdin.write(b"M 100644 inline data/f%02d.bin\ndata %d\n" % (i % FILES, len(data)) + data + b"\n")
        proc.stdin.write(b"M 100644 inline notes.txt\ndata %d\n%s\n" % (len(note), note))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("error: git fast-import failed building the history")
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True)


def timed(cmds: list[list[str]], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds for cmds run one after another, and the peak RSS (MiB) of the largest process
    (benchmarks/measure.py: each under an interpreter of its own, so this one's memory is not
    counted)."""
    elapsed, rss = 0.0, 0.0
    for cmd in cmds:
        try:
            seconds, mib = measure.measured(cmd, cwd, env)
        except RuntimeError as exc:
            raise SystemExit(f"error: {exc}") from None
        elapsed, rss = elapsed + seconds, max(rss, mib)
    return elapsed, round(rss)


def cvfs_round(source: Path, scratch: Path, env: dict[str, str]) -> tuple[float, int]:
    work = scratch / "cvfs"
    shutil.copytree(source, work, symlinks=True)
    archive = scratch / "archive"
    setup = [
        [CVFS, "init", "--archive", archive.as_uri(), "--create"],
        ["git", "config", "-f", ".cvfs/config", "scope.minSize", "64KB"],
        ["git", "add", ".cvfs", ".gitattributes"],
        ["git", "commit", "-q", "-m", "use git-cvfs"],
    ]
    for cmd in setup:
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    result = timed([[CVFS, "migrate", "import", "--everything"]], work, env)
    left = subprocess.run(
        ["git", "rev-list", "--objects", "main"], cwd=work, env=env, check=True, capture_output=True, text=True
    ).stdout
    names = [line.split()[0] for line in left.splitlines()]
    sizes = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectsize)"],
        cwd=work,
        input="\n".join(names),
        capture_output=True,
        text=True,
    ).stdout.split()
    if any(int(s) >= 64 << 10 for s in sizes if s.isdigit()):
        raise SystemExit("error: git-cvfs left a large blob in the rewritten history")
    shutil.rmtree(work)
    shutil.rmtree(archive)
    return result


def lfs_round(source: Path, scratch: Path, env: dict[str, str]) -> tuple[float, int]:
    work = scratch / "lfs"
    shutil.copytree(source, work, symlinks=True)
    result = timed([["git", "lfs", "migrate", "import", "--everything", "--include=*.bin", "--yes"]], work, env)
    shutil.rmtree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--blob", default="2MiB", help="size of each commit's new large blob")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    args = parser.parse_args()
    blob = parse_size(args.blob)
    if not shutil.which("git-lfs"):
        raise SystemExit(
            "error: git-lfs is not installed\nhint: sudo apt-get install git-lfs (./install.sh --dev does)"
        )
    with tempfile.TemporaryDirectory(prefix="cvfs-bench-migrate-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        global CVFS
        if not args.dev_install:  # as users run it: ./install.sh, bytecode compiled at install
            CVFS = measure.user_install(scratch)
        env = {**measure.user_env(CVFS), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        env["GIT_CVFS_NO_PROGRESS"] = "1"
        env.pop("XDG_DATA_HOME", None)
        for key, value in [("user.name", "Bench"), ("user.email", "b@example.com"), ("init.defaultBranch", "main")]:
            subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
        subprocess.run([CVFS, "install", "--global"], env=env, check=True, capture_output=True)
        subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
        source = scratch / "source"
        start = time.perf_counter()
        os.environ.update({"HOME": env["HOME"]})  # build_history's git reads the same identity
        build_history(source, args.commits, blob)
        print(
            f"history: {args.commits} commits, {args.commits * blob / (1 << 30):.2f} GiB of large blobs "
            f"(built in {time.perf_counter() - start:.1f} s)",
            file=sys.stderr,
        )
        cvfs_runs, lfs_runs = [], []
        for i in range(args.rounds):
            order = [("cvfs", cvfs_round), ("lfs", lfs_round)]
            for name, fn in order if i % 2 == 0 else reversed(order):
                seconds, rss = fn(source, scratch, env)
                (cvfs_runs if name == "cvfs" else lfs_runs).append((seconds, rss))
                print(f"round {i + 1}: {name} {seconds:.1f} s, peak RSS {rss} MiB", file=sys.stderr)
    c_time = statistics.median(s for s, _ in cvfs_runs)
    l_time = statistics.median(s for s, _ in lfs_runs)
    print(
        f"| migrate import, {args.commits} commits, {args.commits * blob / (1 << 30):.1f} GiB | git-cvfs | Git LFS | ratio |"
    )
    print("|---|---|---|---|")
    print(f"| time (median of {args.rounds}) | {c_time:.1f} s | {l_time:.1f} s | {c_time / l_time:.2f} |")
    print(f"| peak RSS, largest process | {max(r for _, r in cvfs_runs)} MiB | {max(r for _, r in lfs_runs)} MiB | |")


if __name__ == "__main__":
    main()
