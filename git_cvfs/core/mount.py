"""`git cvfs mount` / `umount`: one commit's tree at a directory, at once, every managed file
hydrated from the archives when it is read. The daemon is this process run with --foreground;
`mount` starts it in the background and returns once the tree is there."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from git_cvfs.core.model.hydrate import Hydrator
from git_cvfs.core.model.revision import RevisionTree, resolve_commit
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.crash import fault_point
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.format.ref import Ref
from git_cvfs.local.processes import alive

READY_WITHIN = 60.0  # seconds the daemon may take to list the tree and mount it


def _registry() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "git-cvfs" / "mounts"


def _record_path(mountpoint: Path) -> Path:
    return _registry() / (hashlib.sha256(str(mountpoint).encode()).hexdigest()[:24] + ".json")


def _mountpoint(directory: str) -> Path:
    return Path(os.path.realpath(directory))


FS_TYPE = "fuse.cvfs"  # what /proc/self/mountinfo calls our mounts (subtype cvfs)


def mount_table() -> dict[str, str]:
    """Mount point -> filesystem type, from /proc/self/mountinfo. Asks the kernel, not the mount:
    a dead daemon's mount point answers every stat with ENOTCONN (or, cached, with stale data)."""
    try:
        with open("/proc/self/mountinfo") as f:
            text = f.read()
    except OSError:
        return {}
    table = {}
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        table[point] = fields[fields.index("-") + 1]
    return table


def fuse_problem() -> CvfsError | None:
    """Why this machine cannot mount, with the fix, or None."""
    if not os.path.exists("/dev/fuse"):
        return CvfsError(
            "this machine has no /dev/fuse",
            hint="load the fuse kernel module (modprobe fuse) or run where FUSE is available",
        )
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return CvfsError(
            "FUSE tools are not installed (no fusermount3)", hint="install them: sudo apt-get install fuse3"
        )
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return CvfsError(f"cannot load libfuse: {exc}", hint="install it: sudo apt-get install fuse3")
    return None


class Mounted(NamedTuple):
    mountpoint: str
    rev: str
    commit: str
    files: int
    managed: int
    managed_bytes: int
    seconds: float
    log: str
    pid: int

    def to_json(self) -> dict[str, object]:
        return self._asdict()


def mount(ws: Workspace, directory: str, *, rev: str = "HEAD", budget: int | None = None) -> Mounted:
    """Start the daemon for REV at DIRECTORY and return once the tree is there."""
    problem = fuse_problem()
    if problem is not None:
        raise problem
    mountpoint = _mountpoint(directory)
    if not mountpoint.is_dir():
        raise UsageError(f"{directory}: no such directory", hint=f"create it first: mkdir -p {directory}")
    if str(mountpoint) in mount_table():
        raise UsageError(f"{directory} is already a mount point", hint=f"unmount it first: git cvfs umount {directory}")
    commit = resolve_commit(ws.repo, rev)
    ws.archives  # noqa: B018 -- the approval check, here where the user sees it
    log = ws.repo.git_dir / "cvfs" / "logs" / f"mount-{_record_path(mountpoint).stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "git_cvfs", "mount", "--foreground", "--rev", commit]
    if budget is not None:
        argv += ["--budget", str(budget)]
    argv.append(str(mountpoint))
    start = time.monotonic()
    with open(log, "ab") as log_file:
        daemon = subprocess.Popen(
            argv,
            cwd=ws.repo.root,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            env={
                **os.environ,
                "GIT_CVFS_NO_PROGRESS": "1",
                "GIT_CVFS_MOUNT_LABEL": rev,
                "GIT_CVFS_MOUNT_LOG": str(log),
            },
        )
    while not os.path.ismount(mountpoint):
        if daemon.poll() is not None:
            said, hint = _what_it_said(log)
            raise CvfsError(
                f"the mount daemon stopped before {directory} was mounted: {said or f'exit {daemon.returncode}'}",
                hint=hint or f"its log is {log}",
            )
        if time.monotonic() - start > READY_WITHIN:
            daemon.terminate()
            raise CvfsError(f"{directory} was not mounted within {READY_WITHIN:.0f} s", hint=f"its log is {log}")
        time.sleep(0.02)
    record = _read_record(mountpoint) or {}
    return Mounted(
        str(mountpoint),
        rev,
        commit,
        int(record.get("files", 0)),
        int(record.get("managed", 0)),
        int(record.get("managed_bytes", 0)),
        time.monotonic() - start,
        str(log),
        daemon.pid,
    )


def _what_it_said(log: Path) -> tuple[str, str | None]:
    """The daemon's last error and hint lines (it reports as every command does), from its log."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "", None
    said = next((line[len("error: ") :] for line in reversed(lines) if line.startswith("error: ")), "")
    hint = next((line[len("hint: ") :] for line in reversed(lines) if line.startswith("hint: ")), None)
    return said, hint if said else None


def _read_record(mountpoint: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(_record_path(mountpoint).read_text())
    except (OSError, ValueError):
        return None
    return record


class _Log:
    """The daemon's log: one line per event, flushed (stdout is the log file)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            sys.stdout.write(f"{stamp} {line}\n")
            sys.stdout.flush()


def serve(ws: Workspace, directory: str, *, rev: str, budget: int | None) -> int:
    """The daemon: list the tree, mount it, serve until unmounted or signalled."""
    import mfusepy

    from git_cvfs.core.mount_fs import MountedTree

    mountpoint = _mountpoint(directory)
    log = _Log()
    tree = RevisionTree(ws.repo, rev)
    managed = tree.managed
    record_path = _record_path(mountpoint)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    label = os.environ.get("GIT_CVFS_MOUNT_LABEL", rev)
    objects: dict[Ref, int] = {}
    for ref in managed.values():
        objects[ref] = objects.get(ref, 0) + 1
    base = {
        "mountpoint": str(mountpoint),
        "repository": str(ws.repo.root),
        "rev": label,
        "commit": tree.commit,
        "pid": os.getpid(),
        "files": sum(1 for e in tree.entries.values() if e.blob),
        "managed": len(managed),
        "managed_bytes": sum(r.size for r in managed.values()),
        "budget": budget,
        "log": os.environ.get("GIT_CVFS_MOUNT_LOG", ""),
    }
    record_lock = threading.Lock()
    hydrator: Hydrator | None = None

    def write_record() -> None:
        """The record `mount --status` reads, rewritten (atomically) after every change."""
        if hydrator is None:
            return
        with record_lock:
            tmp = record_path.with_name(f"{record_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**base, **hydrator.counts()}, indent=1))
            os.replace(tmp, record_path)

    hydrator = Hydrator(
        ws.archives, ws.cache, objects, workers=ws.settings.concurrency, budget=budget, on_change=write_record
    )
    base["archives"] = [a.name for a in hydrator.archives]
    write_record()
    log(f"mounting {label} ({tree.commit[:12]}) at {mountpoint}: {base['files']} files, {len(managed)} managed")
    operations = MountedTree(tree, hydrator, log)
    fault_point("mount:serve")
    try:
        mfusepy.FUSE(
            operations,
            str(mountpoint),
            foreground=True,
            nothreads=False,
            fsname=f"git-cvfs:{ws.repo.root.name}",
            subtype="cvfs",
            default_permissions=True,
            kernel_cache=True,  # a mount shows one commit: its bytes never change under a cached page
            entry_timeout=3600,
            attr_timeout=3600,
            negative_timeout=3600,
        )
    finally:
        hydrator.close_all()
        record_path.unlink(missing_ok=True)
        log(f"unmounted {mountpoint}")
    return 0


def umount(directory: str) -> str:
    """Unmount; a dead daemon's stale mount point is cleared too. Returns what was done."""
    mountpoint = _mountpoint(directory)
    fs_type = mount_table().get(str(mountpoint))
    if fs_type is None:
        _record_path(mountpoint).unlink(missing_ok=True)
        raise UsageError(f"{directory} is not mounted", hint="`git cvfs mount --status DIR` shows a mount's state")
    if fs_type != FS_TYPE:
        raise UsageError(
            f"{directory} is not a git-cvfs mount ({fs_type})", hint=f"unmount it with: umount {directory}"
        )
    record = _read_record(mountpoint)
    pid = int(record["pid"]) if record and "pid" in record else None
    stale = pid is None or not alive(pid)
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount3"
    args = [tool, "-u", "-z", str(mountpoint)] if stale else [tool, "-u", str(mountpoint)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise CvfsError(
            f"could not unmount {directory}: {detail[-1] if detail else f'exit {proc.returncode}'}",
            hint=f"close what is using it (`fuser -m {directory}` lists it), then run `git cvfs umount {directory}` again",
        )
    if pid is not None:
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    _record_path(mountpoint).unlink(missing_ok=True)
    return "cleared a stale mount (its daemon had stopped)" if stale else "unmounted"


def mount_status(directory: str) -> dict[str, Any]:
    mountpoint = _mountpoint(directory)
    fs_type = mount_table().get(str(mountpoint))
    record = _read_record(mountpoint)
    running = record is not None and alive(int(record.get("pid", 0)))
    if fs_type == FS_TYPE and not running:
        raise CvfsError(
            f"{directory} is a stale mount: its daemon stopped", hint=f"clear it: git cvfs umount {directory}"
        )
    if fs_type != FS_TYPE or record is None:
        raise UsageError(f"{directory} is not a git-cvfs mount", hint="mount one: git cvfs mount DIR")
    return record
