from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from git_cvfs.format.ref import Ref
from tests.servers import AZURITE_ACCOUNT, azurite_connection_string, moto_reset, start_azurite, start_moto

BIN = Path(sys.executable).parent
CVFS = str(BIN / "git-cvfs")
REAL_STORE = Path(os.path.expanduser("~")) / ".local" / "share" / "git-cvfs"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile git-cvfs's bytecode once, as pip does at a regular install: an editable install
    writes it on first use, except where PYTHONDONTWRITEBYTECODE is set (as on this workplace's
    machines), and then every git-cvfs process a test starts compiled every module it imports
    again (70 ms for `status`; tests/integration/test_bad_input.py took 19.0 s instead of 14.9)."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "git_cvfs"), quiet=1)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HOME, XDG dirs and git identity; the real store must stay untouched."""
    home = tmp_path / "home"
    home.mkdir()
    before = _snapshot(REAL_STORE)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_CVFS_NO_PROGRESS", "1")
    for var in list(os.environ):
        if (
            var.startswith(("GIT_CVFS_", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
            and var != "GIT_CVFS_NO_PROGRESS"
        ):
            monkeypatch.delenv(var)
    for key, value in {
        "user.name": "Test",
        "user.email": "test@example.invalid",
        "init.defaultBranch": "main",
        "advice.detachedHead": "false",
        "core.autocrlf": "false",
    }.items():
        subprocess.run(["git", "config", "--global", key, value], check=True)
    yield home
    assert _snapshot(REAL_STORE) == before, f"test touched the real store {REAL_STORE}"


def _snapshot(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p) for p in path.rglob("*"))


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def cvfs(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [CVFS, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git-cvfs {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Project:
    """A repository with git-cvfs set up on a file archive, plus a bare remote."""

    def __init__(self, root: Path, archive: Path, remote: Path) -> None:
        self.root = root
        self.archive = archive
        self.remote = remote

    def git(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return git(self.root, *args, **kw)  # type: ignore[arg-type]

    def cvfs(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return cvfs(self.root, *args, **kw)  # type: ignore[arg-type]

    def write(self, rel: str, data: bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def blob(self, rev_path: str) -> bytes:
        return subprocess.run(
            ["git", "cat-file", "-p", rev_path], cwd=self.root, capture_output=True, check=True
        ).stdout

    def commit_all(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def publish(self, files: dict[str, bytes], message: str = "commit") -> None:
        """Write these files, commit everything and push it to the remote's main."""
        for rel, data in files.items():
            self.write(rel, data)
        self.commit_all(message)
        self.git("push", "-q", "origin", "HEAD:main")

    def clone(self, dest: Path, *, env: dict[str, str] | None = None) -> Path:
        git(dest.parent, "clone", "-q", str(self.remote), dest.name, env=env)
        return dest

    def archive_path(self, hex_digest: str) -> Path:
        return self.archive / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest


def new_project(tmp_path: Path, config: dict[str, str], name: str = "project") -> Project:
    """A repository set up with `git cvfs init`, the given .cvfs/config keys, data/** tracked."""
    cvfs(tmp_path, "install", "--global")
    root = tmp_path / name
    archive = tmp_path / "archive"
    remote = tmp_path / f"{name}-remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(tmp_path, "init", "-q", str(root))
    init = ["init", "--archive", config.pop("archive.primary.url", archive.as_uri()), "--create"]
    for key in ("endpoint", "region", "profile"):
        if f"archive.primary.{key}" in config:
            init += [f"--{key}", config.pop(f"archive.primary.{key}")]
    cvfs(root, *init)
    for key, value in {"scope.minSize": "1KB", **config}.items():
        git(root, "config", "-f", ".cvfs/config", key, value)
    # The archives written into .cvfs/config above are this user's own: approve them, as the
    # user would (`git cvfs init --archive` approves only the URL it was given).
    cvfs(root, "trust", "--yes")
    cvfs(root, "track", "data/**")
    git(root, "remote", "add", "origin", str(remote))
    return Project(root, archive, remote)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return new_project(tmp_path, {})


@dataclass
class CloudArchive:
    url: str
    endpoint: str | None
    kind: str

    def config(self, name: str = "primary", endpoint: str | None = None) -> dict[str, str]:
        out = {f"archive.{name}.url": self.url}
        if self.kind == "s3":
            out[f"archive.{name}.endpoint"] = endpoint or self.endpoint or ""
            out[f"archive.{name}.region"] = "us-east-1"
        elif endpoint:
            out[f"archive.{name}.endpoint"] = endpoint
        return out


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = start_moto()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server.url
    server.stop()


@pytest.fixture
def s3_archive(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> CloudArchive:
    moto_reset(moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("GIT_CVFS_TRANSFER_ATTEMPTS", "3")
    import boto3

    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket="cvfs-test")
    return CloudArchive("s3://cvfs-test/team", moto_server, "s3")


@pytest.fixture
def azure_archive(azurite_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> CloudArchive:
    conn = azurite_connection_string(azurite_server)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    monkeypatch.setenv("GIT_CVFS_TRANSFER_ATTEMPTS", "3")
    from azure.storage.blob import BlobServiceClient

    container = "c" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:20]
    BlobServiceClient.from_connection_string(conn).create_container(container)
    return CloudArchive(f"az://{AZURITE_ACCOUNT}/{container}/team", f"{azurite_server}/{AZURITE_ACCOUNT}", "azure")


@pytest.fixture(params=["s3", "azure"])
def cloud(request: pytest.FixtureRequest) -> CloudArchive:
    """Each cloud archive in turn: a test taking it runs against moto's S3 server and Azurite."""
    return request.getfixturevalue(f"{request.param}_archive")  # type: ignore[no-any-return]


@dataclass
class Watched:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    peak_fds: int
    seconds: float


def watched(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Watched:
    """Run git-cvfs, sampling its resident memory and open descriptors from /proc until it exits."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [CVFS, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    peak_rss_kb, peak_fds = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_rss_kb, peak_fds
        while not done.is_set():
            try:
                peak_fds = max(peak_fds, len(os.listdir(f"/proc/{proc.pid}/fd")))
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):  # the kernel's own high-water mark
                        peak_rss_kb = max(peak_rss_kb, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate(timeout=900)
    done.set()
    sampler.join()
    return Watched(proc.returncode, out, err, peak_rss_kb / 1024, peak_fds, time.monotonic() - start)


def paused(cwd: Path, point: str, marker: Path, *args: str) -> subprocess.Popen[str]:
    """git-cvfs started with a pause point; returns once it waits there."""
    proc = subprocess.Popen(
        [CVFS, *args],
        cwd=cwd,
        env={**os.environ, "GIT_CVFS_PAUSE_AT": f"{point}:{marker}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "never reached the pause point"
        time.sleep(0.01)
    return proc


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of this size mounted at mount (made if missing) while the block runs: another
    filesystem, or a small disk to fill for real. The tests run as root in CI."""
    mount.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    assert done.returncode == 0, f"these tests mount a tmpfs (they run as root in CI): {done.stderr!r}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def ref_of(data: bytes) -> Ref:
    return Ref(hashlib.sha256(data).hexdigest(), len(data))


def ref_bytes(data: bytes) -> bytes:
    """The ref git stores for data, written out here rather than by the code under test."""
    return b'{"cvfs":1,"oid":"sha256:%s","size":%d}\n' % (hashlib.sha256(data).hexdigest().encode(), len(data))


def rand(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def imported_modules(stderr: str) -> set[str]:
    """The modules a process imported, from its `-X importtime` (PYTHONPROFILEIMPORTTIME) lines."""
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
