"""The file lock behind invariant 5: exclusive across processes, whichever way each holder took
it (flock at once, or filelock's wait), and a wait that ends in one error with a hint."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from git_cvfs.errors import LockTimeoutError
from git_cvfs.local.locks import file_lock

# Holds the lock at argv[1] until stdin closes; says "held" once it has it.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    if sys.argv[2] == "filelock":
        import filelock
        lock = filelock.FileLock(sys.argv[1])
    else:
        from git_cvfs.local.locks import file_lock
        lock = file_lock(Path(sys.argv[1]), what="w", hint="h")
    with lock:
        print("held", flush=True)
        sys.stdin.read()
    """
)

# Adds 1 to the number in argv[2], argv[3] times, each under the lock at argv[1]; the read and
# the write are apart long enough that two unlocked writers lose each other's additions.
COUNTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    path, counter, rounds, how = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    for _ in range(rounds):
        if how == "filelock":
            import filelock
            lock = filelock.FileLock(str(path))
        else:
            from git_cvfs.local.locks import file_lock
            lock = file_lock(path, what="w", hint="h")
        with lock:
            n = int(counter.read_text())
            time.sleep(0.002)
            counter.write_text(str(n + 1))
    """
)


def hold(path: Path, how: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), how], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_a_free_lock_is_taken_without_importing_filelock(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from git_cvfs.local.locks import file_lock
        with file_lock(Path({str(tmp_path / "locks" / "a.lock")!r}), what="w", hint="h"):
            assert "filelock" not in sys.modules, "a free lock imported filelock"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "locks" / "a.lock").exists()  # left in place: a waiter locks this same file


@pytest.mark.parametrize("how", ["git-cvfs", "filelock"])
def test_a_held_lock_times_out_with_an_error_and_its_hint(tmp_path: Path, how: str) -> None:
    path = tmp_path / "a.lock"
    holder = hold(path, how)
    try:
        with pytest.raises(LockTimeoutError) as caught:
            with file_lock(path, what="shard 3f", hint="wait for the other command", timeout=1):
                pytest.fail("took a lock another process holds")
    finally:
        release(holder)
    assert str(caught.value) == "timed out after 1s waiting for the lock on shard 3f"
    assert caught.value.hint == "wait for the other command"
    with file_lock(path, what="shard 3f", hint="h", timeout=1):  # released: free again
        pass


def test_our_holder_keeps_filelock_out(tmp_path: Path) -> None:
    import filelock

    path = tmp_path / "a.lock"
    holder = hold(path, "git-cvfs")
    try:
        with pytest.raises(filelock.Timeout):
            with filelock.FileLock(str(path), timeout=0.5):
                pytest.fail("filelock took a lock git-cvfs holds")
    finally:
        release(holder)


def test_a_waiter_gets_the_lock_once_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    holder = hold(path, "git-cvfs")
    waiter = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "git-cvfs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        release(holder)
        assert waiter.stdout is not None and waiter.stdout.readline() == "held\n"
    finally:
        release(waiter)


def test_contending_processes_lose_no_update(tmp_path: Path) -> None:
    """Four processes, two taking the lock as git-cvfs does and two through filelock alone,
    each adding 1 to a shared number under the lock 40 times: every addition is there."""
    path, counter = tmp_path / "locks" / "n.lock", tmp_path / "n"
    path.parent.mkdir()
    counter.write_text("0")
    workers = [
        subprocess.Popen([sys.executable, "-c", COUNTER, str(path), str(counter), "40", how])
        for how in ("git-cvfs", "filelock", "git-cvfs", "filelock")
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    assert counter.read_text() == "160"
