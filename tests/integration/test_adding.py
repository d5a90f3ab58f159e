"""init --skill, ingest, scan, register (gitignored data), status --drift, the inventory merge driver."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import Project, git, rand


def test_init_skill_writes_agent_files(project: Project) -> None:
    project.cvfs("init", "--skill")
    claude = (project.root / ".claude/skills/git-cvfs/SKILL.md").read_text()
    cursor = (project.root / ".cursor/rules/git-cvfs.mdc").read_text()
    assert claude.startswith("---\nname: git-cvfs\n") and "git cvfs preflight" in claude
    assert "offload --dry-run" in cursor and "alwaysApply: false" in cursor


def test_ingest_archives_an_outside_file_and_stages_its_ref(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "download.bin"
    data = rand(40_000)
    outside.write_bytes(data)
    out = json.loads(project.cvfs("ingest", "--source", str(outside), "--target", "data/in/x.bin", "--json").stdout)
    h = hashlib.sha256(data).hexdigest()
    assert out == {"path": "data/in/x.bin", "oid": f"sha256:{h}", "size": 40_000}
    assert project.archive_path(h).read_bytes() == data
    assert (project.root / "data/in/x.bin").read_bytes().startswith(b'{"cvfs":1')
    assert project.git("diff", "--cached", "--name-only").stdout.split() == ["data/in/x.bin"]
    project.git("commit", "-q", "-m", "ingested")
    project.cvfs("ensure", "data/in/x.bin")
    assert (project.root / "data/in/x.bin").read_bytes() == data
    refused = project.cvfs("ingest", "--source", str(outside), "--target", "notes/x.bin", check=False)
    assert refused.returncode == 2 and "not a managed path" in refused.stderr


def test_scan_lists_unmanaged_large_files_and_add_tracks_them(project: Project) -> None:
    project.write("models/w.pt", rand(5000))
    project.write("models/tiny.txt", b"small")
    project.write("data/managed.bin", rand(5000, 1))
    found = json.loads(project.cvfs("scan", "--json").stdout)
    assert [f["path"] for f in found] == ["models/w.pt"]
    project.cvfs("scan", "--add")
    assert project.git("check-attr", "filter", "--", "models/w.pt").stdout.strip().endswith("cvfs")
    assert json.loads(project.cvfs("scan", "--json").stdout) == []


def test_register_of_nothing_it_could_record_is_an_error(project: Project) -> None:
    """`register` of a file git tracks (or of an empty directory) recorded nothing, printed
    its "push archives them" hint and exited 0."""
    project.write("data/a.bin", rand(30_000, 9))
    project.commit_all()
    tracked = project.cvfs("register", "data/a.bin", check=False)
    assert tracked.returncode == 1 and "error: nothing to register: data/a.bin is tracked by git" in tracked.stderr
    assert "hint: git add stores tracked files" in tracked.stderr
    (project.root / "empty").mkdir()
    empty = project.cvfs("register", "empty", check=False)
    assert empty.returncode == 1 and "nothing to register: no file under empty" in empty.stderr
    assert not (project.root / ".cvfs/index/data__scratch.jsonl").exists()
    assert project.git("status", "--porcelain").stdout == ""


def test_gitignored_data_register_push_offload_and_ensure_in_a_clone(project: Project, tmp_path: Path) -> None:
    (project.root / ".gitignore").write_text("data/scratch/\n")
    data = rand(30_000, 5)
    project.write("data/scratch/big.npy", data)
    project.cvfs("register", "data/scratch")
    assert project.cvfs("reconcile", "--json", check=False).returncode == 1  # pending upload
    project.cvfs("push")
    row = json.loads((project.root / ".cvfs/index/data__scratch.jsonl").read_text())
    assert row["git"] is False and row["archives"]["primary"]["etag"]
    project.commit_all("record gitignored data")
    assert json.loads(project.cvfs("reconcile", "--json").stdout)["ok"]
    project.cvfs("offload", "data/scratch/big.npy")
    assert (project.root / "data/scratch/big.npy").stat().st_size < 1024
    project.cvfs("ensure", "data/scratch")
    assert (project.root / "data/scratch/big.npy").read_bytes() == data
    assert project.cvfs("status", "data/scratch").returncode == 0  # registered: not "no such managed file"
    # git does not match gitignored files: git-cvfs does, by git's rules (an exclusion included)
    project.cvfs("offload", "data/scratch/big.npy")
    project.cvfs("ensure", "data", ":!data/scratch")
    assert (project.root / "data/scratch/big.npy").stat().st_size < 1024  # left out
    project.cvfs("ensure", ":!data/other")  # only an exclusion: everything else
    assert (project.root / "data/scratch/big.npy").read_bytes() == data
    # attributes as git reads them, for these files git does not hold
    project.cvfs("offload", "data/scratch/big.npy")
    with (project.root / ".gitattributes").open("a") as attributes:
        attributes.write("data/scratch/** keep\n")
    unkept = project.cvfs("ensure", ":(attr:-keep)data", check=False)
    assert unkept.returncode == 1 and "did not match" in unkept.stderr  # the only file here has keep
    assert (project.root / "data/scratch/big.npy").stat().st_size < 1024  # left out
    project.cvfs("ensure", ":(attr:keep)")
    assert (project.root / "data/scratch/big.npy").read_bytes() == data
    project.git("checkout", "--", ".gitattributes")
    project.git("push", "-q", "origin", "main")
    clone = project.clone(tmp_path / "clone")
    assert not (clone / "data/scratch/big.npy").exists()
    git(clone, "cvfs", "ensure", "data/scratch")
    assert (clone / "data/scratch/big.npy").read_bytes() == data


def test_status_drift(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 1))
    project.commit_all()
    assert "drift: none" in project.cvfs("status", "--drift").stdout
    project.write("data/b.bin", rand(20_000, 2))
    project.git("add", "data/b.bin")
    project.git("commit", "-q", "--no-verify", "-m", "no row")
    out = project.cvfs("status", "--drift", check=False)
    assert out.returncode == 1 and "unindexed_ref" in out.stdout


def test_inventory_shards_merge_by_path_and_conflict_only_on_the_same_path(project: Project) -> None:
    for name in ("a", "b"):
        project.write(f"data/{name}.bin", rand(10_000, ord(name)))
    project.commit_all("base")
    project.git("checkout", "-q", "-b", "left")
    project.write("data/a.bin", rand(10_000, 100))  # changes a
    project.commit_all("left")
    project.git("checkout", "-q", "main")
    project.write("data/b.bin", rand(10_000, 200))  # changes b: adjacent rows in one shard
    project.commit_all("right")
    project.git("merge", "-q", "--no-edit", "left")
    rows = [json.loads(line) for line in (project.root / ".cvfs/index/data.jsonl").read_text().splitlines()]
    assert [r["oid"] for r in rows] == [
        "sha256:" + hashlib.sha256(rand(10_000, 100)).hexdigest(),
        "sha256:" + hashlib.sha256(rand(10_000, 200)).hexdigest(),
    ]
    assert json.loads(project.cvfs("reconcile", "--json").stdout)["ok"]
