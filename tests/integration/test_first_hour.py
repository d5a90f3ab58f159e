"""The first hour of a new user: help, typos, bugs that say so, tracing, timeouts, safe defaults."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, Project, cvfs, git, new_project, rand


def test_a_bug_exits_3_and_leaves_a_log_with_the_traceback_and_versions(project: Project, tmp_path: Path) -> None:
    project.write("data/a.bin", rand(20_000, 1))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    # What a user did wrong, and what a check found, keep their own codes.
    assert cvfs(lazy, "ensure", "--no-such-option", check=False).returncode == 2
    assert cvfs(lazy, "preflight", "data/a.bin", check=False).returncode == 1
    out = cvfs(lazy, "ensure", "data", env={"GIT_CVFS_FAIL_AT": "index:write:BUG"}, check=False)
    assert out.returncode == 3, out
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[-2] == "error: internal error: RuntimeError: injected bug at index:write"
    logged = re.search(r"with the log (\S+)$", lines[-1])
    assert logged and lines[-1].startswith("hint: this is a bug in git-cvfs")
    log = Path(logged.group(1))
    assert log.parent == lazy / ".git" / "cvfs" / "logs"
    text = log.read_text()
    assert "command: git-cvfs ensure data" in text and "Traceback" in text and "injected bug" in text
    assert re.search(r"^git-cvfs \S+$", text, re.M) and re.search(r"^python 3\.", text, re.M)
    assert re.search(r"^git version 2\.", text, re.M) and re.search(r"^boto3 ", text, re.M)


def test_a_bug_outside_a_repository_logs_to_the_users_cache(tmp_path: Path) -> None:
    out = cvfs(tmp_path, "doctor", env={"GIT_CVFS_FAIL_AT": "doctor:start:BUG"}, check=False)
    assert out.returncode == 3, out
    logs = list((Path.home() / ".cache" / "git-cvfs" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in out.stderr


def test_git_cvfs_trace_shows_filter_requests_and_archive_calls(s3_archive: CloudArchive, tmp_path: Path) -> None:
    project = new_project(tmp_path, s3_archive.config())
    data = rand(30_000, 2)
    project.write("data/a.bin", data)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    clone = git(tmp_path, "clone", str(project.remote), "traced", env={"GIT_CVFS_TRACE": "1"})
    assert (tmp_path / "traced" / "data/a.bin").read_bytes() == data
    trace = clone.stderr
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{6} \d+ filter: handshake: version=2, capabilities", trace, re.M)
    assert re.search(r"filter: <- command=smudge pathname=data/a\.bin", trace)
    assert re.search(r"archive: primary (download_to|read_range) objects/../../[0-9a-f]{64}", trace)
    assert "testing-secret" not in trace and "testing-key-id" not in trace
    # An absolute path collects the trace there, leaving the terminal to the command.
    target = tmp_path / "trace.log"
    out = cvfs(tmp_path / "traced", "reconcile", "--verify", env={"GIT_CVFS_TRACE": str(target)})
    assert "archive:" not in out.stderr
    assert re.search(r"archive: primary stored objects/../../[0-9a-f]{64} -> 30000 bytes", target.read_text())


def test_a_hung_archive_is_reported_within_about_a_minute_and_a_clone_finishes_with_refs(
    s3_archive: CloudArchive, tmp_path: Path
) -> None:
    import time

    from tests.servers import SilentServer

    project = new_project(tmp_path, s3_archive.config())
    data = rand(30_000, 3)
    project.write("data/a.bin", data)
    for i in range(40):  # many files: the wait is one timeout, not one per file
        project.write(f"data/m{i}.bin", rand(3000, 100 + i))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    hung = SilentServer()
    try:
        # The team's archive stops answering: connections are accepted, nothing comes back.
        git(tmp_path, "config", "--global", "--add", "cvfs.trusted", f"s3://cvfs-test endpoint={hung.url}")
        # transfer.timeout and transfer.attempts bound the wait (20 s x 3 by default: about a
        # minute); here 3 s x 2, and the waiting line after 1 s instead of 5.
        fast = {"GIT_CVFS_TRANSFER_TIMEOUT": "3", "GIT_CVFS_TRANSFER_ATTEMPTS": "2", "GIT_CVFS_WAIT_NOTICE": "1"}
        project.git("config", "-f", ".cvfs/config", "archive.primary.endpoint", hung.url)
        project.git("commit", "-qam", "the archive moved")
        project.git("push", "-q", "origin", "main", env=fast)
        started = time.monotonic()
        clone = git(tmp_path, "clone", str(project.remote), "hung", env=fast, check=False)
        took = time.monotonic() - started
        assert clone.returncode == 0, clone.stderr
        assert (tmp_path / "hung/data/a.bin").read_bytes().startswith(b'{"')
        # One wait for all 41 files (a wait each would be minutes); the rest is the clone itself,
        # on a machine that may be running other tests beside it.
        assert took < 3 * 2 + 24, took
        assert re.search(r"still waiting for archive primary \(s3://cvfs-test/team\) to answer", clone.stderr)
        assert "gives up after about 6 s: transfer.timeout, transfer.attempts" in clone.stderr
        assert "41 files left as refs (archive unreachable" in clone.stderr and "Read timeout" in clone.stderr
        probe = cvfs(tmp_path / "hung", "doctor", "--probe", env=fast, check=False)
        assert probe.returncode == 1 and "FAIL  reach primary" in probe.stdout and "timeout" in probe.stdout
    finally:
        hung.stop()


def test_doctor_probe_fails_for_a_missing_bucket_or_container_and_a_wrong_endpoint_path(
    s3_archive: CloudArchive, azure_archive: CloudArchive, azurite_server: str, tmp_path: Path
) -> None:
    from tests.servers import AZURITE_ACCOUNT

    project = new_project(tmp_path, s3_archive.config())
    assert project.cvfs("doctor", "--probe").returncode == 0
    project.git("config", "-f", ".cvfs/config", "archive.primary.url", "s3://no-such-bucket/team")
    project.cvfs("trust", "--yes")
    out = project.cvfs("doctor", "--probe", check=False)
    assert out.returncode == 1
    assert "FAIL  reach primary" in out.stdout and "bucket no-such-bucket does not exist at" in out.stdout
    assert "hint: check the bucket name" in out.stdout

    az = new_project(tmp_path, azure_archive.config(), name="az")
    assert az.cvfs("doctor", "--probe").returncode == 0
    container = azure_archive.url.split("/")[3]
    az.git("config", "-f", ".cvfs/config", "archive.primary.url", f"az://{AZURITE_ACCOUNT}/nosuchcontainer/team")
    az.cvfs("trust", "--yes")
    out = az.cvfs("doctor", "--probe", check=False)
    assert out.returncode == 1 and "container nosuchcontainer does not exist" in out.stdout
    # Azurite's endpoint without the account in its path: the service answers for another path.
    az.git("config", "-f", ".cvfs/config", "archive.primary.url", f"az://{AZURITE_ACCOUNT}/{container}/team")
    az.git("config", "-f", ".cvfs/config", "archive.primary.endpoint", azurite_server)
    az.cvfs("trust", "--yes")
    env = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_KEY": "a2V5"}
    out = az.cvfs("doctor", "--probe", env=env, check=False)
    assert out.returncode == 1 and "FAIL  reach primary" in out.stdout, out.stdout
    assert "endpoint" in out.stdout


def test_init_refuses_an_incomplete_or_missing_archive_unless_asked_to_create_it(
    s3_archive: CloudArchive, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    missing = tmp_path / "does" / "not" / "exist"
    for args, said in (
        (["--archive", missing.as_uri()], "does not exist"),
        (["--archive", "az://account"], "needs an account and a container"),
        (["--archive", "s3://"], "names no bucket"),
        (["--archive", "s3://cvfs-nope/x", "--endpoint", s3_archive.endpoint or ""], "bucket cvfs-nope does not exist"),
    ):
        out = cvfs(repo, "init", *args, check=False)
        assert out.returncode in (1, 2) and said in out.stderr, (args, out.stderr)
        assert not (repo / ".cvfs").exists() and not missing.exists()
        assert "cvfs.trusted" not in git(tmp_path, "config", "--global", "--list").stdout
    refused = cvfs(repo, "init", "--archive", missing.as_uri(), "--skill", check=False)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    assert not (repo / ".claude").exists() and not (repo / ".cursor").exists()
    made = cvfs(repo, "init", "--archive", "s3://cvfs-new/x", "--endpoint", s3_archive.endpoint or "", "--create")
    assert "created bucket cvfs-new" in made.stderr
    assert (
        "ok    reach primary        s3://cvfs-new/x: bucket cvfs-new answers"
        in cvfs(repo, "doctor", "--probe", check=False).stdout
    )
    made = cvfs(repo, "init", "--archive", missing.as_uri(), "--create")
    assert missing.is_dir() and "created directory" in made.stderr


def test_init_without_an_archive_says_it_is_machine_local(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    out = cvfs(repo, "init")
    assert "warning: the primary archive is a directory on this machine only" in out.stderr
    assert "git cvfs init --archive s3://" in out.stderr


REPO = Path(__file__).resolve().parents[2]
PIP_CACHE = Path.home() / ".cache" / "pip"  # the real one: HOME is a fresh directory in each test


def test_the_committed_man_pages_are_what_the_commands_say() -> None:
    import runpy

    build = runpy.run_path(str(REPO / "docs/man/build.py"))
    wanted = build["pages"]()
    committed = {p.name: p.read_text() for p in (REPO / "docs/man").glob("*.1")}
    stale = sorted(n for n in wanted.keys() | committed.keys() if wanted.get(n) != committed.get(n))
    assert not stale, f"run `.venv/bin/python docs/man/build.py` and commit: {stale}"
    assert "--check-only" in committed["git-cvfs-ensure.1"]


def test_help_works_the_ways_git_users_ask_for_it(project: Project) -> None:
    for args in (["help", "cvfs"], ["cvfs", "--help"]):
        page = project.git(*args, env={"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100"})
        assert "GIT-CVFS(1)" in page.stdout and "git cvfs ensure" in page.stdout, page.stderr
    page = subprocess.run(
        ["man", "git-cvfs-ensure"], env={**os.environ, "MANPAGER": "cat"}, capture_output=True, text=True
    )
    assert "GIT-CVFS-ENSURE(1)" in page.stdout and "--check-only" in page.stdout
    usage = project.git("cvfs", "ensure", "--help")
    assert usage.stdout.startswith("usage: git cvfs ensure") and "--check-only" in usage.stdout
    typo = project.git("cvfs", "ensrue", check=False)
    assert typo.returncode == 2 and "hint: did you mean `git cvfs ensure`?" in typo.stderr
    # A reader that stops early is not an error, and says nothing (git's own exit code for it).
    shell = subprocess.run(
        "set -o pipefail; git cvfs ls-files --json | head -c 1; git cvfs --help | head -1",
        shell=True,
        executable="/bin/bash",
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert shell.stderr == "" and "Traceback" not in shell.stdout


def test_install_sh_puts_git_cvfs_and_its_man_pages_where_a_new_shell_finds_them(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "SHELL": "/bin/bash",
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(PIP_CACHE)),
    }
    out = subprocess.run(["bash", str(REPO / "install.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    bindir = home / ".local/bin"
    assert f"echo 'export PATH=\"{bindir}:$PATH\"' >> ~/.bashrc" in out.stdout
    new_shell = {"HOME": str(home), "PATH": f"{bindir}:/usr/bin:/bin", "MANPAGER": "cat", "PAGER": "cat"}
    assert subprocess.run(["git", "cvfs", "--version"], env=new_shell, capture_output=True).returncode == 0
    for page in ("git-cvfs", "git-cvfs-ensure", "git-cvfs-offload"):
        found = subprocess.run(["man", "-w", page], env=new_shell, capture_output=True, text=True)
        assert found.returncode == 0 and found.stdout.strip().endswith(f"{page}.1"), found
    helped = subprocess.run(["git", "help", "cvfs"], env=new_shell, capture_output=True, text=True)
    assert "GIT-CVFS(1)" in helped.stdout
    # On PATH already: no advice.
    again = subprocess.run(
        ["bash", str(REPO / "install.sh")], env={**env, "PATH": new_shell["PATH"]}, capture_output=True, text=True
    )
    assert again.returncode == 0 and ">> ~/.bashrc" not in again.stdout and "git cvfs try" in again.stdout


def test_json_is_complete_a_failed_file_is_still_a_ref_and_resolve_takes_json(project: Project, tmp_path: Path) -> None:
    import hashlib
    import json

    good, lost = rand(20_000, 5), rand(20_000, 6)
    project.write("data/good.bin", good)
    project.write("data/lost.bin", lost)
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    project.archive_path(hashlib.sha256(lost).hexdigest()).unlink()
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    out = cvfs(lazy, "ensure", "--json", check=False)
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["materialized"] == ["data/good.bin"] and list(result["failed"]) == ["data/lost.bin"]
    assert result["still_refs"] == ["data/lost.bin"]
    assert json.loads(cvfs(lazy, "preflight", "--json", check=False).stdout)["still_refs"] == ["data/lost.bin"]
    resolved = json.loads(cvfs(lazy, "resolve", "--json", "data/good.bin").stdout)
    assert resolved["oid"] == "sha256:" + hashlib.sha256(good).hexdigest()


def _disk_bytes(root: Path) -> int:
    """Bytes the files under root take on disk (blocks, as du counts them; each inode once)."""
    seen: set[int] = set()
    total = 0
    for path in root.rglob("*"):
        st = path.lstat()
        if path.is_file() and not path.is_symlink() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


@pytest.mark.parametrize("kind", ["file", "s3", "azure"])
def test_one_copy_on_disk_after_a_clone_from_every_archive_kind(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config = {} if kind == "file" else request.getfixturevalue(f"{kind}_archive").config()
    project = new_project(tmp_path, config)
    sizes = [3_000_000, 2_000_000] + [200_000] * 20
    for i, size in enumerate(sizes):
        project.write(f"data/f{i:02d}.bin", rand(size, 200 + i))
    project.commit_all()
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    data = sum(sizes)
    assert _disk_bytes(clone / "data") >= data  # every file is there, as data
    held = _disk_bytes(clone / "data") + _disk_bytes(clone / ".git" / "cvfs")
    assert held <= 1.05 * data + 2_000_000, (held, data, _disk_bytes(clone / ".git" / "cvfs"))


def _reconcile(root: Path) -> tuple[int, set[tuple[str, str, str]]]:
    import json

    proc = cvfs(root, "reconcile", "--json", check=False)
    report = json.loads(proc.stdout)
    return proc.returncode, {(f["kind"], f["path"], f.get("archive") or "") for f in report["findings"]}


def test_every_repair_path_leaves_the_inventory_right(tmp_path: Path) -> None:
    import hashlib

    second = tmp_path / "second-archive"
    project = new_project(tmp_path, {"archive.secondary.url": second.as_uri()})
    second.mkdir()
    project.cvfs("trust", "--yes")
    files = {f"data/{n}.bin": rand(20_000, 300 + i) for i, n in enumerate("abc")}
    for name, data in files.items():
        project.write(name, data)
    project.commit_all()
    assert _reconcile(project.root) == (0, set())

    # 1. An archive loses an object; `push --archive` refills it; reconcile is clean, and
    #    --fix-index records the new copy, which then commits as a change of rows only.
    lost = hashlib.sha256(files["data/a.bin"]).hexdigest()
    (second / "objects" / lost[:2] / lost[2:4] / lost).unlink()
    code, found = _reconcile(project.root)
    assert code == 1 and ("pending_upload", "data/a.bin", "secondary") in found
    project.cvfs("push", "--archive", "secondary")
    assert _reconcile(project.root) == (0, set())
    fixed = project.cvfs("reconcile", "--fix-index")
    assert "rewrote 1 inventory row(s)" in fixed.stdout
    assert project.git("status", "--porcelain").stdout.strip() == "M .cvfs/index/data.jsonl"
    project.git("commit", "-qm", "rows", "--", ".cvfs/index")
    assert _reconcile(project.root) == (0, set())
    assert project.cvfs("offload", "data/a.bin").returncode == 0

    # 2. A commit made while the archives were away; the pre-push upload archives it; the
    #    rows it recorded without archive facts are filled by --fix-index; reconcile is clean.
    project.write("data/d.bin", rand(20_000, 310))
    away = {"GIT_CVFS_ARCHIVE_PRIMARY_URL": (tmp_path / "gone").as_uri()}
    project.git("add", "data/d.bin")
    project.git("commit", "-qm", "offline", env=away)
    project.git("push", "-q", "origin", "main")
    assert _reconcile(project.root)[0] == 0
    project.cvfs("reconcile", "--fix-index")
    project.git("commit", "-qm", "rows", "--", ".cvfs/index")
    assert _reconcile(project.root) == (0, set())


def test_paths_that_match_nothing_exit_1_naming_them(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 400))
    project.commit_all()
    for command in (["ensure"], ["preflight"], ["offload"], ["offload", "--dry-run"], ["fetch"]):
        out = project.cvfs(*command, "dta/a.bin", check=False)
        assert out.returncode == 1, (command, out)
        assert "dta/a.bin" in out.stderr and "did not match" in out.stderr, (command, out.stderr)
    # guard is asked about files to delete: one that is not there is a usage error.
    out = project.cvfs("guard", "dta/a.bin", check=False)
    assert out.returncode == 2 and "dta/a.bin does not exist" in out.stderr


def test_a_raw_large_file_anywhere_is_refused_with_a_quoted_fix(project: Project) -> None:
    # Outside every tracked pattern, with no scope.prefix set: refused all the same.
    project.write("exports/run 1.parquet", rand(20_000, 401))
    project.git("add", "-A")
    out = project.git("commit", "-q", "-m", "raw", check=False)
    assert out.returncode != 0
    assert "exports/run 1.parquet: 19.5 KiB is at or above minSize" in out.stderr
    assert "`git cvfs track 'exports/run 1.parquet'`, then `git add 'exports/run 1.parquet'`" in out.stderr
    assert "scope.minSize" in out.stderr  # how to allow raw files, if that is what the team wants
    # Limiting the check to some directories is the opt-out.
    project.git("config", "-f", ".cvfs/config", "scope.prefix", "data/")
    project.git("commit", "-q", "-m", "raw, allowed outside data/")


def test_the_demo_shows_patterns_quoted(tmp_path: Path) -> None:
    out = cvfs(tmp_path, "try", "--path", str(tmp_path / "demo"))
    assert "git cvfs track 'data/**'" in out.stdout + out.stderr
    assert "git cvfs track data/**" not in out.stdout + out.stderr


def _on_a_terminal(cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal, as a user sees it: (exit code, stdout, terminal)."""
    import pty
    import threading

    master, slave = pty.openpty()
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    env = {**os.environ, "GIT_CVFS_NO_PROGRESS": "0"}
    proc = subprocess.run(list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, proc.stdout, seen.decode(errors="replace")


def _sizes_shown(terminal: str, title: str) -> list[str]:
    return re.findall(rf"{title}: +\d+% \(\d+/\d+\), ([\d.]+ [KMG]?i?B) / ", terminal)


def test_progress_moves_with_the_bytes_on_a_terminal_and_never_with_json(
    s3_archive: CloudArchive, tmp_path: Path
) -> None:
    project = new_project(tmp_path, s3_archive.config())
    big = rand(70_000_000, 500)  # above 64 MiB: uploaded in parts, downloaded in ranges
    project.write("data/big.bin", big)
    project.git("add", "-A")
    code, _, terminal = _on_a_terminal(project.root, "git", "commit", "-q", "-m", "big")
    assert code == 0, terminal
    uploading = _sizes_shown(terminal, "Uploading objects to primary")
    assert len(set(uploading)) >= 3, terminal  # it moved while the one object was on its way
    assert "Uploading objects to primary: 100% (1/1), 66.8 MiB / 66.8 MiB" in terminal
    project.git("push", "-q", "origin", "main")
    lazy = project.clone(tmp_path / "lazy", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
    code, out, terminal = _on_a_terminal(lazy, "git", "cvfs", "ensure", "data")
    assert code == 0, terminal
    materializing = _sizes_shown(terminal, "Materializing files")
    assert len(set(materializing)) >= 3, terminal
    assert "100% (1/1), 66.8 MiB / 66.8 MiB" in terminal and ", done." in terminal
    # --json: the same work, no progress (its output is for programs, even on a terminal).
    cvfs(lazy, "offload", "data/big.bin")
    code, out, terminal = _on_a_terminal(lazy, "git", "cvfs", "ensure", "--json", "data")
    assert code == 0 and '"materialized":["data/big.bin"]' in out
    assert "Materializing" not in terminal and "%" not in terminal
