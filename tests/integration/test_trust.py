"""A cloned repository cannot spend your credentials or read your other data (invariant 9).

Each test plays the attacker: a repository whose committed .cvfs/config, .gitattributes and
refs were written to make the victim's git-cvfs send credentials to the attacker's host, or
read another project's objects and send them on. The victim has AWS keys with a session
token, an Azure account key and an Azure login in the environment, as a real user does.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, cvfs, git, rand, ref_bytes
from tests.servers import AZURITE_ACCOUNT, AZURITE_KEY, FaultProxy, RecordingServer

AWS_KEY_ID = "AKIAVICTIMKEY0000001"
AWS_SECRET = "victim-secret-key-Qq9"
AWS_SESSION = "victim-session-token-Zz7"
ATTRS = "data/** filter=cvfs diff=cvfs merge=binary -text\n"


def hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attacker_repo(tmp_path: Path, config: str | None, files: dict[str, bytes], name: str = "hostile") -> Path:
    """A repository written by the attacker with plain git (no git-cvfs of theirs), pushed to a bare remote."""
    src, remote = tmp_path / f"{name}-src", tmp_path / f"{name}.git"
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Mallory",
        "GIT_AUTHOR_EMAIL": "m@example.invalid",
        "GIT_COMMITTER_NAME": "Mallory",
        "GIT_COMMITTER_EMAIL": "m@example.invalid",
    }
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote), env=env)
    git(tmp_path, "init", "-q", "-b", "main", str(src), env=env)
    (src / ".gitattributes").write_text(ATTRS)
    if config is not None:
        (src / ".cvfs").mkdir()
        (src / ".cvfs/config").write_text(config)
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    git(src, "add", "-A", env=env)
    git(src, "commit", "-q", "-m", "innocent-looking data", env=env)
    git(src, "push", "-q", str(remote), "main", env=env)
    return remote


@pytest.fixture
def victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingServer:
    """git-cvfs installed, and every kind of credential in the environment. Returns the stand-in
    for the machine's token service (Azure managed identity), which records every connection."""
    token = RecordingServer(
        {
            "/msi/token": (
                200,
                {
                    "access_token": "victim-bearer-token",
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": "https://storage.azure.com",
                    "token_type": "Bearer",
                },
            )
        }
    ).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_SESSION)
    monkeypatch.setenv("AZURE_STORAGE_KEY", AZURITE_KEY)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{token.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "victim-identity-header")
    cvfs(tmp_path, "install", "--global")
    yield token
    token.stop()


def upload_directly(archive: CloudArchive, data: bytes) -> None:
    """The object the attacker's refs name, put where the attacker's config says (so that,
    once approved, the commands really work)."""
    h = hex_of(data)
    key = f"team/objects/{h[:2]}/{h[2:4]}/{h}"
    if archive.kind == "s3":
        import boto3

        client = boto3.client("s3", endpoint_url=archive.endpoint, region_name="us-east-1")
        client.put_object(Bucket="cvfs-test", Key=key, Body=data)
    else:
        from azure.storage.blob import BlobServiceClient

        from tests.servers import azurite_connection_string

        service = BlobServiceClient.from_connection_string(
            azurite_connection_string(archive.endpoint.rsplit("/", 1)[0])
        )  # type: ignore[union-attr]
        container = archive.url.split("/")[3]
        service.get_container_client(container).upload_blob(key, data)


def only_notice(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("git-cvfs:", "warning:", "error:"))]


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_a_hostile_endpoint_gets_no_request_and_no_credential_until_approved(
    kind: str, request: pytest.FixtureRequest, victim: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive: CloudArchive = request.getfixturevalue(f"{kind}_archive")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)  # the fixture set it: the victim has a key
    upstream = archive.endpoint or ""
    proxy = FaultProxy(upstream.rsplit("/", 1)[0] if kind == "azure" else upstream).start()
    endpoint = f"{proxy.url}/{AZURITE_ACCOUNT}" if kind == "azure" else proxy.url
    data = rand(30_000, 1)
    upload_directly(archive, data)
    config = f'[archive "primary"]\n\turl = {archive.url}\n\tendpoint = {endpoint}\n'
    if kind == "s3":
        config += "\tregion = us-east-1\n"
    remote = attacker_repo(tmp_path, config, {"data/a.bin": ref_bytes(data)})
    try:
        clone = tmp_path / "victim"
        proc = git(tmp_path, "clone", "-q", str(remote), "victim")
        assert (clone / "data/a.bin").read_bytes() == ref_bytes(data)
        notice = only_notice(proc.stderr)
        assert len(notice) == 1 and "not approved on this machine" in notice[0], proc.stderr
        assert endpoint in proc.stderr and "git cvfs trust" in proc.stderr
        git(clone, "config", "user.email", "v@example.invalid")

        for args in (["ensure", "data"], ["fetch", "data"], ["push"], ["reconcile"], ["doctor", "--probe"]):
            out = cvfs(clone, *args, check=False)
            assert out.returncode != 0, (args, out.stdout, out.stderr)
            assert "error:" in out.stderr and "hint:" in out.stderr and "git cvfs trust" in out.stdout + out.stderr
        # The hooks: a commit of new data is refused; a push of refs the archive lacks is refused.
        (clone / "data/b.bin").write_bytes(rand(2 << 20, 2))  # above the default minSize: managed
        git(clone, "add", "data/b.bin")
        commit = git(clone, "commit", "-q", "-m", "mine", check=False)
        assert commit.returncode != 0 and "not approved" in commit.stderr and "hint:" in commit.stderr
        git(clone, "commit", "-q", "--no-verify", "-m", "mine")
        push = git(clone, "push", "-q", "origin", "main", check=False)
        assert push.returncode != 0 and "not approved" in push.stderr
        assert proxy.connections == 0 and proxy.requests == [], proxy.requests
        assert victim.connections == 0

        approve = cvfs(clone, "trust", "--yes")
        assert endpoint in approve.stdout
        cvfs(clone, "ensure", "data/a.bin")
        assert (clone / "data/a.bin").read_bytes() == data
        assert proxy.requests  # the same commands now reach the archive...
        if kind == "s3":  # ...signed with the victim's credentials, as approved
            assert any(h.get("X-Amz-Security-Token") == AWS_SESSION for h in proxy.headers)
        else:
            assert any(h.get("Authorization", "").startswith("SharedKey ") for h in proxy.headers)
        assert cvfs(clone, "doctor", "--probe").returncode == 0
        assert cvfs(clone, "push").returncode == 0
    finally:
        proxy.stop()


def test_an_azure_login_is_not_spent_on_an_unapproved_location(
    azure_archive: CloudArchive, victim: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no key, git-cvfs would use the victim's Azure login (DefaultAzureCredential), whose
    token is good for every storage account they can reach."""
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    attacker = RecordingServer().start()
    data = rand(10_000, 3)
    config = f'[archive "primary"]\n\turl = {azure_archive.url}\n\tendpoint = https://127.0.0.1:{attacker.port}/x\n'
    remote = attacker_repo(tmp_path, config, {"data/a.bin": ref_bytes(data)})
    try:
        clone = tmp_path / "victim"
        git(tmp_path, "clone", "-q", str(remote), "victim")
        for args in (["ensure"], ["doctor", "--probe"], ["reconcile"]):
            assert cvfs(clone, *args, check=False).returncode != 0
        assert victim.connections == 0 and attacker.connections == 0
        cvfs(clone, "trust", "--yes")
        assert cvfs(clone, "ensure", check=False).returncode != 0  # no TLS there: it fails, but only now
        assert victim.requests and victim.requests[0][1].startswith("/msi/token")  # the login was used: approved
        assert attacker.connections > 0
    finally:
        attacker.stop()


def own_repo_on_the_default_archive(tmp_path: Path, data: bytes, *, keep_cache: bool = False) -> Path:
    """The victim's private project: no archive named, so objects go to this machine's default archive."""
    root = tmp_path / "private"
    git(tmp_path, "init", "-q", str(root))
    cvfs(root, "init")
    cvfs(root, "track", "data/**")
    git(root, "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    if keep_cache:
        git(root, "config", "-f", ".cvfs/config", "cache.keep", "true")
    (root / "data").mkdir()
    (root / "data/secret.bin").write_bytes(data)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "private data")
    return root


def default_archive() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "git-cvfs" / "archive"


def test_a_repository_that_names_no_archive_cannot_read_the_default_one(
    victim: RecordingServer, tmp_path: Path
) -> None:
    secret = rand(50_000, 4)
    own_repo_on_the_default_archive(tmp_path, secret)
    h = hex_of(secret)
    assert (default_archive() / "objects" / h[:2] / h[2:4] / h).is_file()
    remote = attacker_repo(tmp_path, None, {"data/stolen.bin": ref_bytes(secret)})
    clone = tmp_path / "victim"
    proc = git(tmp_path, "clone", "-q", str(remote), "victim")
    assert (clone / "data/stolen.bin").read_bytes() == ref_bytes(secret)
    assert "default archive" in proc.stderr and "git cvfs trust" in proc.stderr
    ensure = cvfs(clone, "ensure", check=False)
    assert ensure.returncode == 2 and "hint:" in ensure.stderr
    assert (clone / "data/stolen.bin").read_bytes() == ref_bytes(secret)
    # Approving the default archive is per repository: another clone is still refused.
    cvfs(clone, "trust", "--yes")
    assert "default archive" not in git(tmp_path, "config", "--global", "--get-all", "cvfs.trusted", check=False).stdout
    assert default_archive().as_uri() not in git(tmp_path, "config", "--global", "--list").stdout
    git(tmp_path, "clone", "-q", str(remote), "second")
    assert (tmp_path / "second/data/stolen.bin").read_bytes() == ref_bytes(secret)
    assert cvfs(tmp_path / "second", "ensure", check=False).returncode == 2


@pytest.mark.parametrize("target", ["default archive", "cache"])
def test_a_committed_config_cannot_name_the_default_archive_or_a_cache(
    target: str, victim: RecordingServer, tmp_path: Path
) -> None:
    secret = rand(40_000, 5)
    private = own_repo_on_the_default_archive(tmp_path, secret, keep_cache=True)
    h = hex_of(secret)
    assert (private / ".git/cvfs/objects" / h[:2] / h[2:4] / h).is_file()
    url = default_archive().as_uri() if target == "default archive" else (private / ".git/cvfs").as_uri()
    loot = tmp_path / "loot"
    loot.mkdir()
    config = f'[archive "primary"]\n\turl = {url}\n[archive "secondary"]\n\turl = {loot.as_uri()}\n'
    remote = attacker_repo(tmp_path, config, {"data/stolen.bin": ref_bytes(secret)})
    clone = tmp_path / "victim"
    git(tmp_path, "clone", "-q", str(remote), "victim")
    assert (clone / "data/stolen.bin").read_bytes() == ref_bytes(secret)
    # Even a careless approval does not open it: the location is refused for what it is.
    trust = cvfs(clone, "trust", "--yes", check=False)
    assert trust.returncode != 0 and "may not be named" in trust.stderr
    git(tmp_path, "config", "--global", "--add", "cvfs.trusted", url)
    for args in (["ensure"], ["push"], ["fetch", "data"]):
        out = cvfs(clone, *args, check=False)
        assert out.returncode == 2 and "may not be named in .cvfs/config" in out.stderr, (args, out.stderr)
    assert (clone / "data/stolen.bin").read_bytes() == ref_bytes(secret)
    assert not any(loot.rglob("*"))


def test_bytes_never_go_to_an_archive_the_user_did_not_approve(victim: RecordingServer, tmp_path: Path) -> None:
    """The attacker names the victim's approved team archive as primary (reading it is what the
    victim approved) and their own directory as secondary: nothing may be sent there."""
    team_archive = tmp_path / "team-archive"
    team = tmp_path / "team"
    git(tmp_path, "init", "-q", str(team))
    cvfs(team, "init", "--archive", team_archive.as_uri(), "--create")  # approves it on this machine
    cvfs(team, "track", "data/**")
    git(team, "config", "-f", ".cvfs/config", "scope.minSize", "1KB")
    secret = rand(1_200_000, 6)  # above the hostile repository's minSize (the default), so a copy is managed
    (team / "data").mkdir()
    (team / "data/model.bin").write_bytes(secret)
    git(team, "add", "-A")
    git(team, "commit", "-q", "-m", "team data")
    loot = tmp_path / "loot"
    loot.mkdir()
    config = f'[archive "primary"]\n\turl = {team_archive.as_uri()}\n[archive "secondary"]\n\turl = {loot.as_uri()}\n'
    remote = attacker_repo(tmp_path, config, {"data/stolen.bin": ref_bytes(secret)})
    clone = tmp_path / "victim"
    git(tmp_path, "clone", "-q", str(remote), "victim")
    git(clone, "config", "user.email", "v@example.invalid")
    for args in (["push"], ["push", "--all"], ["push", "--archive", "secondary"], ["reconcile"]):
        out = cvfs(clone, *args, check=False)
        assert out.returncode == 2 and "secondary" in out.stderr and "not approved" in out.stderr, (args, out.stderr)
    (clone / "data/copy.bin").write_bytes(secret)  # the victim commits the bytes under another name
    git(clone, "add", "data/copy.bin")
    assert git(clone, "commit", "-q", "-m", "copy", check=False).returncode != 0
    assert not any(loot.rglob("*"))


def test_one_approval_before_cloning_covers_every_repository_on_that_bucket(
    s3_archive: CloudArchive, victim: RecordingServer, tmp_path: Path
) -> None:
    """The CI way: approve the team's bucket once (no repository needed), then clone as usual;
    or approve for one command with `git -c cvfs.trusted=...`."""
    remotes = []
    for i, prefix in enumerate(("team", "other-team")):
        data = rand(10_000, 10 + i)
        h = hex_of(data)
        import boto3

        boto3.client("s3", endpoint_url=s3_archive.endpoint, region_name="us-east-1").put_object(
            Bucket="cvfs-test", Key=f"{prefix}/objects/{h[:2]}/{h[2:4]}/{h}", Body=data
        )
        config = (
            f'[archive "primary"]\n\turl = s3://cvfs-test/{prefix}\n\tendpoint = {s3_archive.endpoint}\n'
            "\tregion = us-east-1\n"
        )
        remotes.append((attacker_repo(tmp_path, config, {"data/a.bin": ref_bytes(data)}, name=prefix), data))
    location = f"s3://cvfs-test endpoint={s3_archive.endpoint}"
    once = git(tmp_path, "-c", f"cvfs.trusted={location}", "clone", "-q", str(remotes[0][0]), "just-this-once")
    assert (tmp_path / "just-this-once/data/a.bin").read_bytes() == remotes[0][1], once.stderr
    assert "cvfs.trusted" not in git(tmp_path, "config", "--global", "--list").stdout
    cvfs(tmp_path, "trust", location)
    for i, (remote, data) in enumerate(remotes):
        proc = git(tmp_path, "clone", "-q", str(remote), f"clone{i}")
        assert (tmp_path / f"clone{i}/data/a.bin").read_bytes() == data, proc.stderr
        assert "not approved" not in proc.stderr


def _on_a_terminal(cwd: Path, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run git-cvfs on a pseudo-terminal, answering its question."""
    import pty

    from tests.conftest import CVFS

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execv(CVFS, [CVFS, *args])
    out = b""
    while b"[y/N]" not in out:
        out += os.read(fd, 4096)
    os.write(fd, answer + b"\n")
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


def test_trust_asks_on_a_terminal_and_approves_only_on_yes(victim: RecordingServer, tmp_path: Path) -> None:
    archive = tmp_path / "team-archive"
    archive.mkdir()
    remote = attacker_repo(tmp_path, f'[archive "primary"]\n\turl = {archive.as_uri()}\n', {"data/a.txt": b"x"})
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), "clone")
    listed = cvfs(clone, "trust", "--json", check=False)  # what an agent shows its user: nothing approved
    assert listed.returncode == 1
    assert json.loads(listed.stdout)["archives"][0] == {
        "archive": "primary",
        "location": archive.as_uri(),
        "needs_approval": True,
        "approved": False,
        "forbidden": None,
        "scope": "global",
    }
    code, out = _on_a_terminal(clone, ["trust"], b"n")
    assert code == 1 and "NOT APPROVED" in out and archive.as_uri() in out and "nothing approved" in out
    assert "cvfs.trusted" not in git(tmp_path, "config", "--global", "--list").stdout
    code, out = _on_a_terminal(clone, ["trust"], b"y")
    assert code == 0 and f"approved {archive.as_uri()}" in out
    assert git(tmp_path, "config", "--global", "--get-all", "cvfs.trusted").stdout.split() == [archive.as_uri()]
