"""Reading git fast-export streams: messages are bytes counted, never parsed as commands."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from git_cvfs.local.git import Repo
from git_cvfs.local.history import Commit, Passthrough, fast_export, read_export


def test_a_message_that_looks_like_commands_is_only_a_message() -> None:
    message = b"fix\nM 100644 0123456789012345678901234567890123456789 evil\ndeleteall\n\ncommit refs/heads/x\n"
    stream = (
        b"feature done\ncommit refs/heads/main\nmark :1\nauthor A <a> 1 +0000\ncommitter A <a> 1 +0000\n"
        + b"data %d\n" % len(message)
        + message
        + b'deleteall\nM 100644 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "sp ace\\303\\251"\n\n'
        + b"tag v1\nfrom :1\ntagger A <a> 1 +0000\ndata 4\nM x\n\ndone\n"
    )
    commands = list(read_export(io.BytesIO(stream)))
    commits = [c for c in commands if isinstance(c, Commit)]
    assert len(commits) == 1 and list(commits[0].files) == ["sp aceé"]
    assert message in commits[0].header
    assert [c.ref for c in commands if isinstance(c, Passthrough) and c.ref] == ["refs/tags/v1"]
    assert b"".join(c.data for c in commands if isinstance(c, Passthrough)).endswith(b"data 4\nM x\n\ndone\n")


def test_fast_export_of_a_real_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "r")], check=True)
    root = tmp_path / "r"
    (root / "a b.txt").write_bytes(b"1")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "M 100644 x y\n\ndeleteall"], cwd=root, check=True)
    repo = Repo(root, root / ".git", root / ".git", root / ".git/hooks")
    with fast_export(repo, ["HEAD"]) as stream:
        commits = [c for c in stream if isinstance(c, Commit)]
    assert len(commits) == 1 and list(commits[0].files) == ["a b.txt"] and commits[0].original
