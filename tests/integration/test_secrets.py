"""Credentials never appear in output, errors, refs, inventory or anything git-cvfs writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, git, new_project, rand
from tests.servers import FaultProxy, Rule

ENV_SECRET = "env-secret-Zq81xLmN0pQ"
FILE_SECRET = "file-secret-Yt55aBcD7eF"


def _everything_written(root: Path) -> bytes:
    """The work tree's files (but the secrets file itself) and everything under .git."""
    out = []
    for path in root.rglob("*"):
        if path.is_file() and path.name != "secrets.env":
            out.append(path.read_bytes())
    return b"\n".join(out)


@pytest.mark.parametrize("unreachable", [False, True])
def test_no_command_prints_or_writes_a_credential(
    s3_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unreachable: bool
) -> None:
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        project = new_project(tmp_path, s3_archive.config(endpoint=proxy.url))
        # The access key comes from the environment, the secret key from .cvfs/secrets.env.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_SECRET)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        secrets = project.root / ".cvfs/secrets.env"
        secrets.write_text(f"AWS_SECRET_ACCESS_KEY={FILE_SECRET}\n")
        secrets.chmod(0o600)
        project.write("data/a.bin", rand(20_000, 1))
        project.write("data/b.bin", rand(20_000, 2))
        project.commit_all()
        project.git("push", "-q", "origin", "main")
        if unreachable:
            proxy.rules.append(Rule("*", ".", "503", times=-1))
        commands = [
            ["status", "--json"],
            ["status", "--drift"],
            ["ls-files"],
            ["push"],
            ["push", "--json"],
            ["fetch", "data"],
            ["ensure", "data"],
            ["preflight", "data"],
            ["resolve", "data/a.bin"],
            ["reconcile", "--json"],
            ["offload", "--dry-run", "data"],
            ["offload", "data/b.bin"],
            ["guard", "data"],
            ["fsck"],
            ["prune", "--dry-run"],
            ["scan"],
            ["doctor", "--probe"],
            ["doctor", "--roundtrip", "--json"],
        ]
        seen = []
        for args in commands:
            proc = project.cvfs(*args, check=False)
            seen.append(proc.stdout + proc.stderr)
            assert "Traceback" not in proc.stderr, args
        for args in (["status"], ["commit", "-q", "--allow-empty", "-m", "x"], ["push", "origin", "main"]):
            proc = git(project.root, *args, check=False)
            seen.append(proc.stdout + proc.stderr)
        lazy = subprocess.run(
            ["git", "clone", str(project.remote), str(tmp_path / "lazy")], capture_output=True, text=True, check=False
        )
        seen.append(lazy.stdout + lazy.stderr)
        everything = "\n".join(seen)
        for secret in (ENV_SECRET, FILE_SECRET):
            assert secret not in everything
            assert secret.encode() not in _everything_written(project.root)
            assert secret.encode() not in git(project.root, "log", "-p", "--all").stdout.encode()
        if unreachable:
            assert "unreachable" in everything  # the failures did happen, and were reported
    finally:
        proxy.stop()


URL_PASSWORD = "url-password-Wk42sPq"


@pytest.mark.parametrize("unreachable", [False, True])
def test_a_password_in_an_endpoint_url_is_never_printed(
    s3_archive: CloudArchive, tmp_path: Path, unreachable: bool
) -> None:
    """Some users write credentials into a URL (`http://user:pass@host`); botocore repeats the
    URL in its errors. Whatever prints it, the password is replaced by ***."""
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        project = new_project(tmp_path, s3_archive.config(endpoint=proxy.url))
        project.write("data/a.bin", rand(20_000, 3))
        project.commit_all()
        port = proxy.url.rsplit(":", 1)[1]
        endpoint = f"http://ada:{URL_PASSWORD}@127.0.0.1:{port if not unreachable else 9}"
        project.git("config", "cvfs.archive.primary.endpoint", endpoint)  # the user's own, local config
        trusted = project.cvfs("trust", "--yes")  # port 9 (nothing listens) is another location: approve it
        seen = [trusted.stdout + trusted.stderr]
        for args in (
            ["doctor", "--probe"],
            ["doctor", "--json", "--probe"],
            ["trust"],
            ["trust", "--list"],
            ["push"],
            ["push", "--json"],
            ["reconcile", "--json"],
            ["reconcile"],
            ["resolve", "data/a.bin"],
            ["offload", "data/a.bin"],
            ["ensure", "data"],
            ["fetch", "data"],
        ):
            proc = project.cvfs(*args, check=False, env={"GIT_CVFS_TRACE": "1"})
            seen.append(proc.stdout + proc.stderr)
        project.write("data/b.bin", rand(20_000, 4))
        for args in (["add", "-A"], ["commit", "-q", "-m", "b"], ["push", "origin", "main"]):
            proc = git(project.root, *args, check=False)
            seen.append(proc.stdout + proc.stderr)
        everything = "\n".join(seen)
        assert URL_PASSWORD not in everything
        if unreachable:
            assert "***@127.0.0.1:9" in everything  # the URL was printed, the password was not
    finally:
        proxy.stop()
