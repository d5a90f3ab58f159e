"""Seconds and peak RSS of a command, measured so the benchmark's own memory is not counted.

ru_maxrss carries over fork and exec: a child forked from a benchmark that holds 300 MiB of
test data reports at least that much whatever it runs. So the command runs under a fresh
interpreter of its own (a few MiB), which times it and reads the largest RSS among the
processes it waited for (RUSAGE_CHILDREN), and writes both to a file.

Also the test data peers.py and floor.py write: many files of one size, and one large file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMED = (
    "import resource,subprocess,sys,time;t=time.perf_counter();rc=subprocess.call(sys.argv[2:]);"
    "t=time.perf_counter()-t;m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
    "open(sys.argv[1],'w').write(f'{t} {m}');sys.exit(rc)"
)


def wrapped(log: Path, cmd: Sequence[str]) -> list[str]:
    """cmd under the timing interpreter, which writes 'seconds peak-KiB' to log."""
    return [sys.executable, "-c", TIMED, str(log), *cmd]


def read_log(log: Path) -> tuple[float, float]:
    seconds, kib = log.read_text().split()
    return float(seconds), int(kib) / 1024


def measured(cmd: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak RSS in MiB of the largest process cmd ran; RuntimeError if it fails."""
    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        log = Path(tmp) / "timed"
        proc = subprocess.run(wrapped(log, cmd), cwd=cwd, env=env, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
        return read_log(log)


def user_install(scratch: Path, python: str | None = None) -> str:
    """git-cvfs installed as a user gets it (`./install.sh`: a regular, non-editable pip install
    with bytecode compiled), into the scratch directory. The development venv's editable
    install pays an import hook on every Python start (about 20 ms per process here).
    `python`: the interpreter, as a user picks it with PYTHON=...; else install.sh's own pick."""
    print("installing git-cvfs as a user would (./install.sh) into the scratch directory", file=sys.stderr)
    env = {**user_env(), "HOME": str(scratch / "install-home"), "GIT_CVFS_HOME": str(scratch / "install")}
    env["GIT_CVFS_BIN"] = str(scratch / "install-bin")
    if python:
        env["PYTHON"] = python
    subprocess.run(["bash", str(ROOT / "install.sh"), "--no-git-config"], env=env, check=True, capture_output=True)
    return str(scratch / "install" / "venv" / "bin" / "git-cvfs")


def user_env(cvfs: str | None = None) -> dict[str, str]:
    """The environment as a user's install would run: bytecode cached (pip compiles it at
    install time; an editable install writes it on first use unless this variable forbids it);
    with cvfs, that git-cvfs's directory first on PATH (git finds the hooks' git-cvfs there)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if cvfs is not None:
        env["PATH"] = f"{Path(cvfs).parent}{os.pathsep}{env['PATH']}"
    return env


DIRS = 10  # the many small files of peers.py and floor.py are spread over this many directories


def write_tree(root: Path, files: int, size: int, seed: int) -> list[str]:
    """files of size bytes in DIRS directories under root/data, each replaced whole (new inode)."""
    names = []
    block = os.urandom(size)
    for i in range(files):
        rel = f"data/d{i % DIRS}/f{i:05d}.bin"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        tmp.write_bytes(seed.to_bytes(4, "big") + i.to_bytes(4, "big") + block[8:])
        os.replace(tmp, path)
        names.append(rel)
    return names


def touch_tree(root: Path, names: list[str], seconds: int = 10) -> None:
    """A new mtime for each file, the same bytes (a tool that rewrote them alike, a copy back
    from a backup): git must read them again to know they did not change."""
    for rel in names:
        path = root / rel
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def write_big(root: Path, size: int) -> None:
    path = root / "data" / "big.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name("big.new"), "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n
    os.replace(path.with_name("big.new"), path)
