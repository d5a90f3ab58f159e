"""ensure flushes small files in batches: whatever the batching, each file's own bytes are
flushed before it gets its name, the last partial batch is finished, and an interrupt leaves
every file either written whole or still its ref, with no temporary file and no descriptor
left behind."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from git_cvfs.core import ensure as ensure_module
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.local import worktree, writeback
from tests.conftest import Project, git, rand


def _lazy_clone(project: Project, tmp_path: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        project.write(rel, data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(project.remote), "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    clone = tmp_path / "lazy"
    git(clone, "cvfs", "trust", "--yes")
    shutil.rmtree(clone / ".git" / "cvfs" / "objects", ignore_errors=True)  # from the archive, not the cache
    return clone


def _small_files(count: int) -> dict[str, bytes]:
    return {f"data/d{i % 3}/f{i:03d}.bin": rand(3000 + i, seed=i) for i in range(count)}


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".cvfs-" in p.name and p.name.endswith(".tmp")]


def test_every_file_is_flushed_before_it_gets_its_name_through_full_and_partial_batches(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _small_files(2 * ensure_module._FLUSH_BATCH + 5)  # two full batches and a partial one at least
    files["data/large.bin"] = rand(ensure_module._FLUSH_BELOW + 10, seed=99)  # flushed on its own
    clone = _lazy_clone(project, tmp_path, files)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_exchange, real_replace = os.fsync, worktree._exchange, os.replace
    real_start_all = writeback.start_all

    def fsync(fd: int) -> None:
        with lock:
            events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def exchange(dir_fd: int, a: str, b: str) -> bool:
        with lock:
            events.append(("rename", a))
        return real_exchange(dir_fd, a, b)

    def replace(a: str, b: str, **kw: int) -> None:
        with lock:
            events.append(("rename", os.path.basename(a)))
        real_replace(a, b, **kw)  # type: ignore[arg-type]

    def start_all(fd: int) -> bool:  # a small file, written and waiting for its batch
        with lock:
            events.append(("written", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_start_all(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(writeback, "start_all", start_all)
    monkeypatch.setattr(worktree, "_exchange", exchange)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.chdir(clone)

    result = ensure_module.ensure(Workspace.discover(clone), ["data"])

    assert result.failed == {} and sorted(result.materialized) == sorted(files)
    for rel, data in files.items():
        assert (clone / rel).read_bytes() == data
    renamed = [name for kind, name in events if kind == "rename" and ".cvfs-" in name]
    assert len(renamed) == len(files)
    for name in renamed:
        before = events[: events.index(("rename", name))]
        assert ("fsync", name) in before, name
    first_flush = next(i for i, (kind, _) in enumerate(events) if kind == "fsync")
    assert sum(kind == "written" for kind, _ in events[:first_flush]) >= ensure_module._FLUSH_BATCH  # batched
    assert _tmp_files(clone) == []


def test_an_interrupt_mid_batch_leaves_each_file_whole_or_a_ref_and_nothing_open(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _small_files(3 * ensure_module._FLUSH_BATCH)
    clone = _lazy_clone(project, tmp_path, files)
    real_fsync = os.fsync
    calls = 0
    lock = threading.Lock()

    def fsync(fd: int) -> None:
        nonlocal calls
        with lock:
            calls += 1
            stop = calls == ensure_module._FLUSH_BATCH + 3  # inside the second batch
        if stop:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.chdir(clone)
    ws = Workspace.discover(clone)
    refs = {rel: (clone / rel).read_bytes() for rel in files}
    open_before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        ensure_module.ensure(ws, ["data"])
    monkeypatch.setattr(os, "fsync", real_fsync)

    whole = [rel for rel, data in files.items() if (clone / rel).read_bytes() == data]
    assert 0 < len(whole) < len(files)
    for rel in files:
        assert (clone / rel).read_bytes() in (files[rel], refs[rel]), rel
    assert _tmp_files(clone) == []
    assert len(os.listdir("/proc/self/fd")) == open_before
    # and running it again finishes the job
    again = ensure_module.ensure(ws, ["data"])
    assert again.failed == {}
    assert all((clone / rel).read_bytes() == data for rel, data in files.items())
