"""Every console session in README.md and docs/ runs as written (tests/docs_session.py), from a
fresh HOME, against real git, a directory archive, moto's S3 server and Azurite."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from prysk.test import test as run_session

from tests.conftest import BIN
from tests.docs_session import documents, parse
from tests.servers import azurite_connection_string, moto_reset

REPO = Path(__file__).resolve().parents[2]
DOCS = documents(REPO)


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_the_document_runs_as_written(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: str, azurite_server: str
) -> None:
    session = parse(doc.read_text())
    assert session.commands, f"{doc.name} has console blocks but no command"
    root = tmp_path / "doc"
    home = root / "home" / "ada"
    for d in (home, root / "srv", root / "tmp" / "wf"):
        d.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(root))  # prysk shows this directory as $TMPDIR in the output
    monkeypatch.chdir(home)
    moto_reset(moto_server)  # each document starts with no buckets
    env = {
        "HOME": str(home),
        "TMPDIR": str(root),
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "SHELL": "/bin/bash",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr in the order a terminal shows them
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "EDITOR": "true",
        # The servers the S3 and Azure pages talk to, in place of AWS and Azure.
        "S3_ENDPOINT": moto_server,
        "AWS_ACCESS_KEY_ID": "docs-key-id",
        "AWS_SECRET_ACCESS_KEY": "docs-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AZURITE": azurite_server,
        "AZURITE_CONNECTION_STRING": azurite_connection_string(azurite_server),
        # The hook managers the hook page sets up, installed by ./install.sh --dev.
        "HOOK_MANAGERS": str(REPO / ".cache" / "hook-managers" / "node_modules" / ".bin"),
    }
    _, postout, diff = run_session(session.lines, shell="/bin/bash", env=env, cleanenv=True)
    if os.environ.get("DOCS_TEST_SHOW") == doc.name:  # what the session printed, to write a page from
        print(b"".join(postout or []).decode(errors="replace"))
    text = b"".join(diff).decode(errors="replace")
    assert not text, f"{doc.relative_to(REPO)} does not run as written:\n{text}"
    assert postout is not None, f"{doc.name}: the session skipped itself"
    # What cannot run here is named in the document, with why.
    for reason in session.not_run:
        assert re.search(r"\S", reason)
    assert os.environ["TMPDIR"] == str(root)
