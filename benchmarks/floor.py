"""How close git-cvfs's `git add` and branch switch come to the floor, in one run.

    .venv/bin/python benchmarks/floor.py              # 2,000 x 256 KiB and one 1 GiB file, 5 rounds
    .venv/bin/python benchmarks/floor.py --quick      # 200 x 256 KiB and 64 MiB, 2 rounds

Each step is the same git command on the same files, in a fresh repository whose
.gitattributes send them through a long-running filter (filter.<driver>.process, the
protocol git-cvfs speaks). All but the last step use a minimal filter (this file, run with
--serve: one thread, no checks), each doing one thing more than the step before.

`git add`:
  protocol   read each file's bytes from git, answer a small ref: what git and the pipe
             between them cost, and nothing else
  + hash     also hash the bytes (sha256, as every content-addressed store must)
  + store    also write them to a file of their own, renamed into a store under the hash
             (objects/xx/yy/<oid>, Git LFS's layout and git-cvfs's; no flush to disk, as
             Git LFS and DVC store)
  + flush    each file flushed to disk (fsync) before its rename: a durable store, done
             the simple way
  git-cvfs   hashed and stored in its cache, every object flushed before its rename
             (DESIGN.md, invariant 3), the flushes in batches

switching to another branch whose files all differ (`git checkout`):
  protocol   answer each ref with as many zero bytes from memory: what git's writing of
             the files and the pipe cost
  + read     answer it with the stored file's bytes
  + verify   hash the stored bytes and compare with the oid before answering (DESIGN.md,
             invariant 2)
  git-cvfs   the same, from its directory archive (the cache keeps no second copy)

git-cvfs is installed into the scratch directory with ./install.sh, as a user installs it
(--dev-install: this checkout's venv). Each round runs every step in fresh directories, the
order rotating; every timed command starts after a sync. The scratch directories go where
TMPDIR points (a file system that has seen little churn gives figures that repeat).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import measure  # benchmarks/measure.py, beside this script

ADD_STEPS = {"protocol": "protocol", "+ hash": "hash", "+ store": "store", "+ flush": "flush", "git-cvfs": ""}
SWITCH_STEPS = {"protocol": "protocol", "+ read": "read", "+ verify": "verify", "git-cvfs": ""}
PACKET = 65516  # the largest pkt-line payload


def serve(clean: str, smudge: str, store: Path) -> None:
    """A minimal long-running filter (git's filter-process protocol, version 2)."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer

    def packet() -> bytes | None:
        head = inp.read(4)
        if len(head) < 4:
            raise SystemExit(0)  # git closed the pipe: done
        n = int(head, 16)
        return None if n == 0 else inp.read(n - 4)

    def until_flush() -> list[bytes]:
        got = []
        while (p := packet()) is not None:
            got.append(p)
        return got

    def send(*lines: bytes) -> None:
        for line in lines:
            out.write(b"%04x" % (len(line) + 4) + line)
        out.write(b"0000")

    until_flush()
    send(b"git-filter-server\n", b"version=2\n")
    out.flush()
    until_flush()
    send(b"capability=clean\n", b"capability=smudge\n")
    out.flush()
    store.mkdir(parents=True, exist_ok=True)
    zeros = bytes(PACKET)
    count = 0
    while True:
        header = until_flush()
        count += 1
        if b"command=smudge\n" in header:
            ref = json.loads(b"".join(until_flush()))
            oid, size = ref["oid"].removeprefix("sha256:"), ref["size"]
            data = b""
            if smudge != "protocol":
                data = (store / oid[:2] / oid[2:4] / oid).read_bytes()
                if smudge == "verify" and (hashlib.sha256(data).hexdigest() != oid or len(data) != size):
                    raise SystemExit(f"floor filter: {oid} is not what the store holds")
            send(b"status=success\n")
            for start in range(0, size, PACKET):
                piece = zeros[: min(PACKET, size - start)] if smudge == "protocol" else data[start : start + PACKET]
                out.write(b"%04x" % (len(piece) + 4) + piece)
            out.write(b"0000")
            send()  # the final (empty) status list: success stands
            out.flush()
            continue
        digest = hashlib.sha256()
        size = 0
        spool = None
        if clean in ("store", "flush"):
            spool = open(store / f"tmp-{os.getpid()}-{count}", "xb", buffering=0)
        while (p := packet()) is not None:
            if clean != "protocol":
                digest.update(p)
            if spool is not None:
                spool.write(p)
            size += len(p)
        if spool is not None:
            if clean == "flush":
                os.fsync(spool.fileno())
            spool.close()
            oid = digest.hexdigest()
            dest = store / oid[:2] / oid[2:4] / oid  # the layout of Git LFS's store and git-cvfs's
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(spool.name, dest)
        send(b"status=success\n")
        answer = b'{"oid":"sha256:%s","size":%d' % (digest.hexdigest().encode(), size)
        # in protocol mode nothing is hashed: a count makes each file's answer its own
        send(answer + (b',"n":%d}\n' % count if clean == "protocol" else b"}\n"))
        send()
        out.flush()


class Bench:
    def __init__(self, env: dict[str, str], cvfs: str) -> None:
        self.env = env
        self.cvfs = cvfs

    def run(self, cwd: Path, *cmd: str) -> None:
        proc = subprocess.run(list(cmd), cwd=cwd, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"error: {' '.join(cmd)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")

    def timed(self, cwd: Path, *cmd: str) -> float:
        subprocess.run(["sync"], check=True)
        start = time.perf_counter()
        self.run(cwd, *cmd)
        return time.perf_counter() - start

    def repository(self, base: Path, clean: str, smudge: str = "protocol") -> Path:
        """A repository whose data/ goes through git-cvfs (clean "") or the minimal filter."""
        repo = base / "work"
        self.run(base, "git", "init", "-q", str(repo))
        if not clean:
            self.run(repo, self.cvfs, "init", "--archive", (base / "archive").as_uri(), "--create")
            self.run(repo, "git", "config", "-f", ".cvfs/config", "scope.minSize", "64KB")
            self.run(repo, self.cvfs, "track", "data/**")
        else:
            self.serve_with(repo, clean, smudge)
            (repo / ".gitattributes").write_text("data/** filter=floor\n")
        self.run(repo, "git", "add", "-A")
        self.run(repo, "git", "commit", "-q", "-m", "setup")
        return repo

    def serve_with(self, repo: Path, clean: str, smudge: str) -> None:
        store = repo.parent / "store"
        serve_cmd = f"'{sys.executable}' '{Path(__file__).resolve()}' --serve {clean} {smudge} '{store}'"
        self.run(repo, "git", "config", "filter.floor.process", serve_cmd)
        self.run(repo, "git", "config", "filter.floor.required", "true")


def round_of(bench: Bench, scratch: Path, r: int, files: int, size: int, big: int) -> dict[str, dict[str, float]]:
    """One round: every step of every workload, the steps' order rotated by r."""
    got: dict[str, dict[str, float]] = {}
    directories = [f"data/d{i}" for i in range(min(files, measure.DIRS))]

    def fresh(step: Callable[[Path], float]) -> float:
        base = scratch / "round"
        base.mkdir()
        try:
            return step(base)
        finally:
            shutil.rmtree(base)

    def add_many(mode: str) -> Callable[[Path], float]:
        def step(base: Path) -> float:
            repo = bench.repository(base, mode)
            measure.write_tree(repo, files, size, seed=r)
            return bench.timed(repo, "git", "add", *directories)

        return step

    def add_big(mode: str) -> Callable[[Path], float]:
        def step(base: Path) -> float:
            repo = bench.repository(base, mode)
            measure.write_big(repo, big)
            return bench.timed(repo, "git", "add", "data/big.bin")

        return step

    def switch(mode: str) -> Callable[[Path], float]:
        def step(base: Path) -> float:
            repo = bench.repository(base, mode and "store")
            measure.write_tree(repo, files, size, seed=1)
            bench.run(repo, "git", "add", *directories)
            bench.run(repo, "git", "commit", "-q", "-m", "first")
            bench.run(repo, "git", "checkout", "-q", "-b", "second")
            measure.write_tree(repo, files, size, seed=2)
            bench.run(repo, "git", "add", *directories)
            bench.run(repo, "git", "commit", "-q", "-m", "second")
            if mode:
                bench.serve_with(repo, "store", mode)
            return bench.timed(repo, "git", "checkout", "-q", "main")

        return step

    workloads: list[tuple[str, dict[str, str], Callable[[str], Callable[[Path], float]]]] = [
        (f"git add, {files:,} x {size >> 10} KiB", ADD_STEPS, add_many),
        (f"git add, one {big >> 20} MiB file", ADD_STEPS, add_big),
        (f"switch branches, {files:,} files differ", SWITCH_STEPS, switch),
    ]
    for workload, steps, make in workloads:
        names = list(steps)
        order = names[r % len(names) :] + names[: r % len(names)]
        got[workload] = {name: fresh(make(steps[name])) for name in order}
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 x 256 KiB and 64 MiB, 2 rounds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--dev-install", action="store_true", help="measure this venv's editable install instead")
    parser.add_argument("--serve", nargs=3, metavar=("CLEAN", "SMUDGE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], Path(args.serve[2]))
        return
    files, size, big = (200, 256 << 10, 64 << 20) if args.quick else (2000, 256 << 10, 1 << 30)
    rounds = args.rounds or (2 if args.quick else 5)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="cvfs-bench-floor-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        cvfs = str(Path(sys.executable).parent / "git-cvfs") if args.dev_install else measure.user_install(scratch)
        env = {**measure.user_env(cvfs), "HOME": str(home), "GIT_CVFS_NO_PROGRESS": "1"}
        for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "GIT_CONFIG_GLOBAL"):
            env.pop(var, None)
        for key, value in [("user.name", "Bench"), ("user.email", "b@example.com"), ("init.defaultBranch", "main")]:
            subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
        subprocess.run([cvfs, "install", "--global"], env=env, check=True, capture_output=True)
        bench = Bench(env, cvfs)
        for r in range(rounds):
            start = time.perf_counter()
            for workload, by_step in round_of(bench, scratch, r, files, size, big).items():
                for step, seconds in by_step.items():
                    results.setdefault(workload, {}).setdefault(step, []).append(seconds)
            print(f"round {r + 1} of {rounds}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    report(results, rounds)


def report(results: dict[str, dict[str, list[float]]], rounds: int) -> None:
    print(f"medians of {rounds} rounds")
    for steps, floor in ((ADD_STEPS, "+ flush"), (SWITCH_STEPS, "+ verify")):
        names = list(steps)
        print(f"\n| workload | {' | '.join(names)} | git-cvfs / {floor} |")
        print("|---|" + "---|" * (len(names) + 1))
        for workload, by_step in results.items():
            if set(by_step) != set(names):
                continue
            medians = {s: statistics.median(v) for s, v in by_step.items()}
            cells = " | ".join(f"{medians[s]:.2f} s" for s in names)
            print(f"| {workload} | {cells} | {medians['git-cvfs'] / medians[floor]:.2f} |")


if __name__ == "__main__":
    main()
