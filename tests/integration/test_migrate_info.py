"""`git cvfs migrate info`: what across history would become refs, by pattern and size."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import cvfs, git, rand


def plain_history(tmp_path: Path) -> Path:
    """A plain git repository (no git-cvfs) with large blobs in its history."""
    repo = tmp_path / "plain"
    git(tmp_path, "init", "-q", str(repo))
    (repo / "data").mkdir()
    (repo / "data/big.bin").write_bytes(rand(3_000_000, 1))
    (repo / "data/t.csv").write_bytes(rand(1_500_000, 2))
    (repo / "README").write_bytes(b"small\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "data/big.bin").write_bytes(rand(2_000_000, 3))  # a second version: history keeps both
    (repo / "data/copy.bin").write_bytes(rand(2_000_000, 3))  # the same bytes: one blob
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "data/x.parquet").write_bytes(rand(1_200_000, 4))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "side")
    git(repo, "checkout", "-q", "-")
    return repo


def test_migrate_info_by_pattern_across_history(tmp_path: Path) -> None:
    repo = plain_history(tmp_path)
    head = json.loads(cvfs(repo, "migrate", "info", "--json").stdout)
    by = {p["pattern"]: p for p in head["patterns"]}
    assert set(by) == {"*.bin", "*.csv"}
    assert by["*.bin"]["blobs"] == 2 and by["*.bin"]["bytes"] == 5_000_000 and by["*.bin"]["largest"] == 3_000_000
    assert by["*.csv"]["bytes"] == 1_500_000
    assert head["staying_in_git"]["blobs"] == 1  # README

    everything = json.loads(cvfs(repo, "migrate", "info", "--everything", "--json").stdout)
    assert {p["pattern"] for p in everything["patterns"]} == {"*.bin", "*.csv", "*.parquet"}
    above = json.loads(cvfs(repo, "migrate", "info", "--above", "2500KB", "--json").stdout)
    assert [(p["pattern"], p["blobs"]) for p in above["patterns"]] == [("*.bin", 1)]
    only = json.loads(cvfs(repo, "migrate", "info", "--everything", "--include", "*.parquet", "--json").stdout)
    assert [p["pattern"] for p in only["patterns"]] == ["*.parquet"]

    text = cvfs(repo, "migrate", "info").stdout
    assert "*.bin" in text and "3 blob(s), 6.2 MiB, at or above 1.0 MiB in the history of HEAD" in text


def test_migrate_info_names_a_revision_that_does_not_exist(tmp_path: Path) -> None:
    repo = plain_history(tmp_path)
    proc = cvfs(repo, "migrate", "info", "no-such-branch", check=False)
    assert proc.returncode == 2 and "cannot list history of no-such-branch" in proc.stderr and "hint:" in proc.stderr
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""
