"""doctor, .cvfs/secrets.env, and large transfers (multipart / block uploads, ranged downloads)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import CloudArchive, new_project, rand
from tests.servers import FaultProxy, Rule


def test_doctor_on_a_file_archive_with_roundtrip(project: object) -> None:
    out = project.cvfs("doctor", "--roundtrip")  # type: ignore[attr-defined]
    lines = out.stdout.splitlines()
    assert all(line.startswith(("ok", " ")) for line in lines), out.stdout
    assert any("roundtrip primary" in line for line in lines)


def test_doctor_reports_each_failure_with_a_hint(
    s3_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(tmp_path, s3_archive.config())
    (project.root / ".git/hooks/pre-push").unlink()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    proc = project.cvfs("doctor", "--json", check=False)
    assert proc.returncode == 1
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    assert not checks["hooks"]["ok"] and "pre-push" in checks["hooks"]["detail"] and checks["hooks"]["hint"]
    assert not checks["credentials primary"]["ok"] and checks["credentials primary"]["hint"]
    assert checks["filter"]["ok"] and checks["config"]["ok"]


def test_doctor_probe_and_roundtrip_on_s3_and_unreachable(s3_archive: CloudArchive, tmp_path: Path) -> None:
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        project = new_project(tmp_path, s3_archive.config(endpoint=proxy.url))
        ok = project.cvfs("doctor", "--roundtrip")
        assert "ok    roundtrip primary" in ok.stdout.replace("  ", "  ")
        assert "testing-secret" not in ok.stdout + ok.stderr
        proxy.rules.append(Rule("*", ".", "reset", times=-1))
        bad = project.cvfs("doctor", "--probe", check=False)
        assert bad.returncode == 1 and "FAIL  reach primary" in bad.stdout and "hint:" in bad.stdout
    finally:
        proxy.stop()


def test_secrets_env_supplies_credentials_and_is_refused_when_unsafe(
    s3_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = new_project(tmp_path, s3_archive.config())
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    secrets = project.root / ".cvfs/secrets.env"
    secrets.write_text(
        "# per-repo keys\nAWS_ACCESS_KEY_ID=testing-key-id\nexport AWS_SECRET_ACCESS_KEY='s3cr3t-value-xyz'\n"
    )
    secrets.chmod(0o600)
    data = rand(5000)
    project.write("data/a.bin", data)
    project.git("add", "-A")
    commit = project.git("commit", "-m", "with secrets")
    assert "s3cr3t-value-xyz" not in commit.stdout + commit.stderr
    assert project.git("status", "--porcelain").stdout == ""  # secrets.env is ignored, not pending
    assert "s3cr3t" not in project.blob("HEAD:.cvfs/index/data.jsonl").decode()
    status = project.cvfs("doctor", "--probe")
    assert "secrets.env sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in status.stdout
    assert "s3cr3t-value-xyz" not in status.stdout + status.stderr

    secrets.chmod(0o644)
    refused = project.cvfs("push", check=False)
    assert refused.returncode == 2 and "readable by other users" in refused.stderr and "chmod 600" in refused.stderr
    secrets.chmod(0o600)
    project.git("add", "-f", ".cvfs/secrets.env")
    refused = project.cvfs("push", check=False)
    assert refused.returncode == 2 and "tracked by git" in refused.stderr
    assert "s3cr3t-value-xyz" not in refused.stderr


def test_large_objects_use_multipart_uploads_and_ranged_downloads(s3_archive: CloudArchive, tmp_path: Path) -> None:
    proxy = FaultProxy(s3_archive.endpoint or "").start()
    try:
        project = new_project(tmp_path, s3_archive.config(endpoint=proxy.url))
        data = rand(70 << 20, 11)  # above the 64 MiB multipart threshold
        project.write("data/big.bin", data)
        project.commit_all()
        row = json.loads(project.blob("HEAD:.cvfs/index/data.jsonl"))
        assert "-" in row["archives"]["primary"]["etag"]  # S3's multipart ETag: "<md5>-<parts>"
        project.git("push", "-q", "origin", "main")
        proxy.requests.clear()
        clone = project.clone(tmp_path / "clone", env={"GIT_CVFS_SKIP_SMUDGE": "1"})
        from tests.conftest import git

        git(clone, "cvfs", "ensure", "data/big.bin")
        assert hashlib.sha256((clone / "data/big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
        gets = [r for r in proxy.requests if r.startswith("GET") and "objects" in r]
        assert len(gets) > 1  # ranged, parallel GETs
        # written at their offsets straight into the work tree: the lean cache never held it
        assert not list((clone / ".git/cvfs/objects").rglob(hashlib.sha256(data).hexdigest()))
    finally:
        proxy.stop()


def test_azure_block_upload_for_objects_above_one_block(azure_archive: CloudArchive, tmp_path: Path) -> None:
    project = new_project(tmp_path, azure_archive.config())
    data = rand(20 << 20, 12)  # above the 8 MiB single-put size: staged blocks
    project.write("data/big.bin", data)
    project.commit_all()
    from azure.storage.blob import BlobServiceClient

    container = azure_archive.url.split("/")[3]
    h = hashlib.sha256(data).hexdigest()
    blob = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_blob_client(
        container, f"team/objects/{h[:2]}/{h[2:4]}/{h}"
    )
    blocks = blob.get_block_list("committed")[0]
    assert len(blocks) >= 3
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert hashlib.sha256((clone / "data/big.bin").read_bytes()).hexdigest() == h
