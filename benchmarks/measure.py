"""Seconds and peak RSS of a command, measured so the benchmark's own memory is not counted.

ru_maxrss carries over fork and exec: a child forked from a benchmark that holds 300 MiB of
test data reports at least that much whatever it runs. So the command runs under a fresh
interpreter of its own (a few MiB), which times it and reads the largest RSS among the
processes it waited for (RUSAGE_CHILDREN), and writes both to a file.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

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
