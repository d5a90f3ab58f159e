"""`git cvfs migrate import` and `export`: history with large plain blobs (or Git LFS pointers)
rewritten into refs whose bytes are archived and verified first, and back again. Real git,
real git-lfs, real fast-export/fast-import; the results are pushed, cloned and checked out."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
from pathlib import Path

from git_cvfs.format.lfs_pointer import parse_lfs_pointer
from git_cvfs.format.ref import parse_ref
from tests.conftest import cvfs, git, rand

THRESHOLD = 10_000


class Repo:
    def __init__(self, root: Path, remote: Path, archive: Path) -> None:
        self.root, self.remote, self.archive = root, remote, archive

    def git(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return git(self.root, *args, **kw)  # type: ignore[arg-type]

    def cvfs(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return cvfs(self.root, *args, **kw)  # type: ignore[arg-type]

    def write(self, rel: str, data: bytes) -> None:
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).write_bytes(data)

    def commit_all(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def blob(self, spec: str) -> bytes:
        return subprocess.run(["git", "cat-file", "-p", spec], cwd=self.root, capture_output=True, check=True).stdout

    def refs(self, *patterns: str) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)", *patterns).stdout
        return dict(line.split(" ") for line in out.splitlines())

    def files_at(self, rev: str) -> dict[str, tuple[str, int]]:
        """path -> (blob id, size) of every file in rev's tree."""
        out = self.git("ls-tree", "-r", "-l", "--full-tree", rev).stdout
        files = {}
        for line in out.splitlines():
            meta, path = line.split("\t", 1)
            _mode, _kind, blob, size = meta.split()
            files[path] = (blob, int(size))
        return files


def adopt(repo: Repo) -> None:
    """What a team does before importing: set git-cvfs up with a shared archive, commit that."""
    repo.cvfs("init", "--archive", repo.archive.as_uri(), "--create")
    repo.git("config", "-f", ".cvfs/config", "scope.minSize", str(THRESHOLD))
    repo.cvfs("trust", "--yes")
    repo.commit_all("use git-cvfs")


def plain_history(tmp_path: Path) -> tuple[Repo, dict[str, bytes]]:
    """A repository that never used git-cvfs: large blobs in old history, on a tag, on an unmerged
    branch, under a name with a space; small files, a symlink and an executable among them."""
    cvfs(tmp_path, "install", "--global")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(tmp_path, "init", "-q", "work")
    repo = Repo(tmp_path / "work", remote, tmp_path / "archive")
    repo.git("remote", "add", "origin", str(remote))
    d = {
        "a1": rand(30_000, 1),
        "a2": rand(31_000, 2),
        "m": rand(40_000, 3),
        "e": rand(25_000, 4),
        "sp": rand(12_000, 5),
        "x": rand(15_000, 6),
        "small": b"a small file stays a blob\n",
    }
    repo.write("README", b"hello\n")
    repo.write("data/a.bin", d["a1"])
    repo.write("data/notes.txt", d["small"])
    repo.commit_all("first")
    repo.write("data/a.bin", d["a2"])
    repo.write("models/m.pt", d["m"])
    repo.write("data/with space.bin", d["sp"])
    repo.write("tools/run", d["x"])
    (repo.root / "tools/run").chmod(0o755)
    (repo.root / "link").symlink_to("data/a.bin")
    repo.commit_all("second")
    repo.git("tag", "-a", "v1", "-m", "release one")
    repo.git("checkout", "-q", "-b", "exp")
    repo.write("data/e.bin", d["e"])
    repo.commit_all("experiment")
    repo.git("checkout", "-q", "main")
    repo.git("push", "-q", "-u", "origin", "main")
    repo.git("push", "-q", "origin", "exp", "v1")
    adopt(repo)
    return repo, d


def large_blobs(repo: Repo, refs: list[str]) -> list[str]:
    """Every (commit, path) in the history of refs whose blob is at or above the threshold."""
    found = []
    for commit in repo.git("rev-list", *refs).stdout.split():
        for path, (_, size) in repo.files_at(commit).items():
            if size >= THRESHOLD:
                found.append(f"{commit[:8]}:{path}")
    return found


def test_import_rewrites_every_branch_and_tag_archives_first_and_the_result_clones(tmp_path: Path) -> None:
    repo, d = plain_history(tmp_path)
    before = repo.refs("refs/heads", "refs/tags")
    log_before = repo.git("log", "--format=%an %ae %at %s", "--branches", "--tags").stdout
    assert large_blobs(repo, ["--branches", "--tags"])

    result = json.loads(repo.cvfs("migrate", "import", "--everything", "--json").stdout)

    after = repo.refs("refs/heads", "refs/tags")
    assert {c["ref"] for c in result["refs"]} == set(before) == {"refs/heads/main", "refs/heads/exp", "refs/tags/v1"}
    assert all(after[name] != before[name] for name in before)
    assert large_blobs(repo, ["--branches", "--tags"]) == []
    # authors, dates and messages as they were; the annotated tag is still annotated
    assert repo.git("log", "--format=%an %ae %at %s", "--branches", "--tags").stdout == log_before
    assert repo.git("cat-file", "-t", "v1").stdout.strip() == "tag"
    # each converted file is a ref, its bytes in the archive under its hash, and its row there
    expected = {
        "v1": {"data/a.bin": d["a2"], "models/m.pt": d["m"], "data/with space.bin": d["sp"], "tools/run": d["x"]},
        "exp": {"data/e.bin": d["e"], "data/a.bin": d["a2"]},
        "main~2": {"data/a.bin": d["a1"]},
    }
    for rev, files in expected.items():
        rows = {}
        for shard in repo.git("ls-tree", "--name-only", f"{rev}:.cvfs/index/").stdout.split():
            for line in repo.blob(f"{rev}:.cvfs/index/{shard}").splitlines():
                row = json.loads(line)
                rows[row["path"]] = row
        for path, data in files.items():
            ref = parse_ref(repo.blob(f"{rev}:{path}"))
            assert ref is not None and ref.hex == hashlib.sha256(data).hexdigest(), (rev, path)
            stored = repo.archive / "objects" / ref.hex[:2] / ref.hex[2:4] / ref.hex
            assert stored.read_bytes() == data
            assert rows[path]["oid"] == ref.oid and rows[path]["archives"]["primary"]["etag"]
        attrs = repo.git("check-attr", "filter", "--", *files).stdout  # the work tree's, for names
        assert attrs
    assert repo.blob("v1:data/notes.txt") == d["small"]
    assert repo.git("ls-tree", "v1", "link").stdout.startswith("120000")
    assert repo.git("ls-tree", "v1", "tools/run").stdout.startswith("100755")
    # the work tree moved along: clean, the bytes still there, nothing left to add
    assert repo.git("status", "--porcelain").stdout == ""
    assert (repo.root / "data/a.bin").read_bytes() == d["a2"]
    # the originals are one update-ref away
    kept = repo.refs(result["originals_kept_under"])
    assert sorted(kept.values()) == sorted(before.values())
    # what to push, and pushing it works (the pre-push hook finds every object archived)
    assert result["push"] == ["git push --force-with-lease origin exp main", "git push --force origin tag v1"]
    for command in result["push"]:
        subprocess.run(shlex.split(command), cwd=repo.root, check=True, capture_output=True)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.remote), "clone")
    assert (clone / "data/a.bin").read_bytes() == d["a2"]
    assert (clone / "data/with space.bin").read_bytes() == d["sp"]
    git(clone, "checkout", "-q", "v1")
    assert (clone / "models/m.pt").read_bytes() == d["m"]
    git(clone, "checkout", "-q", "main~2")
    assert (clone / "data/a.bin").read_bytes() == d["a1"]
    git(clone, "checkout", "-q", "main")
    assert json.loads(cvfs(clone, "reconcile", "--json").stdout)["ok"]

    again = repo.cvfs("migrate", "import", "--everything", check=False)
    assert again.returncode == 1 and "nothing to import" in again.stderr
    assert repo.refs("refs/heads", "refs/tags") == after


def test_export_is_the_way_back_to_plain_blobs(tmp_path: Path) -> None:
    repo, d = plain_history(tmp_path)
    repo.cvfs("migrate", "import", "--everything")
    exported = json.loads(repo.cvfs("migrate", "export", "--everything", "--json").stdout)
    assert exported["objects"] == 6
    assert repo.blob("main:data/a.bin") == d["a2"] and repo.blob("v1:models/m.pt") == d["m"]
    assert repo.blob("main~2:data/a.bin") == d["a1"] and repo.blob("exp:data/e.bin") == d["e"]
    assert repo.git("ls-tree", "-r", "--name-only", "main", ".cvfs/index").stdout == ""
    assert repo.git("ls-tree", "main", ".gitattributes").stdout == ""  # it held only git-cvfs's lines
    assert repo.git("status", "--porcelain").stdout == ""
    assert (repo.root / "models/m.pt").read_bytes() == d["m"]
    assert not (repo.root / ".cvfs/index").exists()


def test_export_fetches_what_this_machine_lacks_and_refuses_a_lying_archive(tmp_path: Path) -> None:
    repo, d = plain_history(tmp_path)
    repo.cvfs("migrate", "import", "--everything")
    shutil.rmtree(repo.root / ".git/cvfs/objects")
    victim = hashlib.sha256(d["m"]).hexdigest()
    (repo.archive / "objects" / victim[:2] / victim[2:4] / victim).write_bytes(rand(40_000, 99))
    before = repo.refs()
    refused = repo.cvfs("migrate", "export", "--everything", check=False)
    assert refused.returncode == 1 and "could not be fetched" in refused.stderr and "models/m.pt" in refused.stderr
    assert repo.refs() == before  # and no new backup either


def test_include_converts_only_what_matches(tmp_path: Path) -> None:
    repo, d = plain_history(tmp_path)
    first = repo.git("rev-parse", "main~2").stdout
    repo.cvfs("migrate", "import", "--include", "models/**")
    assert repo.git("rev-parse", "main~2").stdout == first  # before models/ existed: the same commit
    assert parse_ref(repo.blob("main:models/m.pt")) is not None
    assert repo.blob("main:data/a.bin") == d["a2"]
    assert "models/** filter=cvfs" in repo.blob("main:.gitattributes").decode()
    assert repo.blob("exp:models/m.pt") == d["m"]  # only the current branch was named
    assert repo.git("status", "--porcelain").stdout == ""


def test_above_below_min_size_sets_it_so_the_next_add_agrees(tmp_path: Path) -> None:
    repo, _d = plain_history(tmp_path)
    out = repo.cvfs("migrate", "import", "--above", "5KB")
    assert "scope.minSize set to" in out.stdout
    assert repo.git("config", "-f", ".cvfs/config", "scope.minSize").stdout.strip() == "5120"
    assert parse_ref(repo.blob("main:data/a.bin")) is not None
    assert repo.git("status", "--porcelain").stdout.split() == ["M", ".cvfs/config"]
    repo.write("data/a.bin", rand(6_000, 7))  # between the two sizes: a ref, as the import made it
    repo.git("add", "data/a.bin")
    assert parse_ref(repo.blob(":data/a.bin")) is not None


def test_refusals_change_nothing(tmp_path: Path) -> None:
    repo, _d = plain_history(tmp_path)
    before = repo.refs()
    repo.write("data/a.bin", b"edited")
    dirty = repo.cvfs("migrate", "import", check=False)
    assert dirty.returncode == 1 and "uncommitted changes" in dirty.stderr and "hint:" in dirty.stderr
    repo.git("checkout", "-q", "--", "data/a.bin")
    not_a_ref = repo.cvfs("migrate", "import", "main~1", check=False)
    assert not_a_ref.returncode == 2 and "not a branch or tag" in not_a_ref.stderr
    missing = repo.cvfs("migrate", "import", "no-such-branch", check=False)
    assert missing.returncode == 2
    for useless in (["export", "--include", "data/**"], ["export", "--above", "1MB"], ["info", "--from-lfs"]):
        ignored = repo.cvfs("migrate", *useless, check=False)
        assert ignored.returncode == 2 and "does nothing" in ignored.stderr, useless
    repo.git("worktree", "add", "-q", str(tmp_path / "other"), "exp")
    elsewhere = repo.cvfs("migrate", "import", "--everything", check=False)
    assert elsewhere.returncode == 1 and "refs/heads/exp is checked out in another worktree" in elsewhere.stderr
    repo.git("worktree", "remove", str(tmp_path / "other"))
    before = repo.refs()
    shutil.rmtree(repo.archive)
    repo.archive.write_text("not a directory")  # the archive cannot take anything
    unarchived = repo.cvfs("migrate", "import", "--everything", check=False)
    assert unarchived.returncode == 1 and "nothing was rewritten" in unarchived.stderr
    assert repo.refs() == before
    assert "Traceback" not in dirty.stderr + not_a_ref.stderr + unarchived.stderr


def test_a_shallow_clone_is_not_rewritten(tmp_path: Path) -> None:
    # Rewritten there, the clone's oldest commit would become a root commit, and the
    # force-push the rewrite asks for would cut the remote's history below it.
    repo, _d = plain_history(tmp_path)
    repo.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", "--depth", "1", repo.remote.as_uri(), "shallow")
    shallow = Repo(tmp_path / "shallow", repo.remote, repo.archive)
    before = shallow.refs()
    for command in (["import", "--everything"], ["export", "--everything"]):
        proc = shallow.cvfs("migrate", *command, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "error: this clone is shallow: a history rewrite cannot see" in proc.stderr
        assert "hint: run it in a full clone, or make this one whole first: git fetch --unshallow" in proc.stderr
    assert shallow.refs() == before

    shallow.git("fetch", "-q", "--unshallow")
    shallow.cvfs("migrate", "import", "--everything")
    roots = shallow.git("rev-list", "--max-parents=0", "main").stdout.split()
    assert [shallow.git("log", "-1", "--format=%s", r).stdout.strip() for r in roots] == ["first"]


def lfs(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "lfs", *args], cwd=cwd, check=True, capture_output=True)


def test_from_lfs_turns_pointers_into_refs_and_clones_without_git_lfs(tmp_path: Path) -> None:
    assert shutil.which("git-lfs"), "git-lfs is needed (./install.sh --dev installs it)"
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(tmp_path, "init", "-q", "work")
    repo = Repo(tmp_path / "work", remote, tmp_path / "archive")
    lfs(repo.root, "install", "--local")
    lfs(repo.root, "track", "*.bin")
    big1, big2, tiny, plain = rand(50_000, 1), rand(60_000, 2), b"tiny lfs file\n", rand(20_000, 3)
    repo.write("data/big.bin", big1)
    repo.write("data/tiny.bin", tiny)
    repo.write("docs/pointer-example.txt", b"")
    repo.commit_all("lfs files")
    repo.write("data/big.bin", big2)
    # a pointer-shaped text at a path Git LFS does not manage is content, and stays so
    example = subprocess.run(
        ["git", "lfs", "pointer", "--file=data/big.bin"], cwd=repo.root, capture_output=True, check=True
    ).stdout
    repo.write("docs/pointer-example.txt", example)
    repo.write("raw.dat", plain)
    repo.commit_all("more")
    assert parse_lfs_pointer(repo.blob("HEAD:data/big.bin")) is not None
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "-u", "origin", "main")
    cvfs(tmp_path, "install", "--global")
    adopt(repo)

    result = json.loads(repo.cvfs("migrate", "import", "--from-lfs", "--everything", "--json").stdout)
    assert result["objects"] == 2 and result["inlined"] == 1
    assert parse_ref(repo.blob("main:data/big.bin")).hex == hashlib.sha256(big2).hexdigest()  # type: ignore[union-attr]
    assert parse_ref(repo.blob("main~2:data/big.bin")).hex == hashlib.sha256(big1).hexdigest()  # type: ignore[union-attr]
    assert repo.blob("main:data/tiny.bin") == tiny  # below minSize: a plain blob, as git-cvfs keeps it
    assert repo.blob("main:docs/pointer-example.txt") == example
    assert repo.blob("main:raw.dat") == plain
    attributes = repo.blob("main:.gitattributes").decode()
    assert "*.bin filter=cvfs diff=cvfs merge=binary -text" in attributes and "lfs" not in attributes
    assert repo.git("status", "--porcelain").stdout == ""
    for command in result["push"]:
        subprocess.run(shlex.split(command), cwd=repo.root, check=True, capture_output=True)

    # a machine without Git LFS at all: no filter.lfs anywhere, no git-lfs on PATH
    lfs(repo.root, "uninstall", "--local")
    git(tmp_path, "config", "--global", "--remove-section", "filter.lfs", check=False)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), "clone")
    assert git(clone, "config", "--get-regexp", "^filter\\.lfs", check=False).stdout == ""
    assert (clone / "data/big.bin").read_bytes() == big2
    assert (clone / "data/tiny.bin").read_bytes() == tiny
    git(clone, "checkout", "-q", "HEAD~2")
    assert (clone / "data/big.bin").read_bytes() == big1


def test_from_lfs_names_missing_objects_before_rewriting(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "work")
    repo = Repo(tmp_path / "work", tmp_path / "remote.git", tmp_path / "archive")
    lfs(repo.root, "install", "--local")
    lfs(repo.root, "track", "*.bin")
    repo.write("data/big.bin", rand(50_000, 1))
    repo.commit_all("lfs")
    repo.write("data/big.bin", rand(50_000, 2))
    repo.commit_all("lfs again")
    cvfs(tmp_path, "install", "--global")
    adopt(repo)
    shutil.rmtree(repo.root / ".git/lfs/objects")  # (git-lfs restores the checked-out one from the work tree)
    before = repo.refs()
    refused = repo.cvfs("migrate", "import", "--from-lfs", check=False)
    assert refused.returncode == 1 and "git lfs fetch --all" in refused.stderr and "data/big.bin" in refused.stderr
    assert repo.refs() == before


def test_push_commands_are_quoted_for_a_shell(tmp_path: Path) -> None:
    repo, _ = plain_history(tmp_path)
    hostile = "x;touch${IFS}pwned"
    repo.git("branch", hostile, "exp")
    repo.git("push", "-q", "origin", hostile)
    result = json.loads(repo.cvfs("migrate", "import", "--everything", "--json").stdout)
    line = next(c for c in result["push"] if "--force-with-lease" in c)
    assert f"'{hostile}'" in line
    subprocess.run(line, shell=True, cwd=repo.root, check=True, capture_output=True)
    assert not (repo.root / "pwned").exists()
    assert (
        repo.git("rev-parse", f"refs/heads/{hostile}").stdout
        == git(repo.remote, "rev-parse", f"refs/heads/{hostile}").stdout
    )


def test_import_keeps_submodules_and_a_sparse_checkout(tmp_path: Path) -> None:
    """A submodule entry passes through as it was; a sparse checkout stays sparse, and a large
    file outside it is converted all the same (it is in history, not on disk)."""
    repo, d = plain_history(tmp_path)
    lib = tmp_path / "lib"
    git(tmp_path, "init", "-q", str(lib))
    (lib / "README").write_text("lib\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib")
    repo.commit_all("vendor lib")
    sub_commit = repo.git("rev-parse", "HEAD:vendor/lib").stdout
    repo.git("sparse-checkout", "set", "--no-cone", "/*", "!/models/")
    assert not (repo.root / "models/m.pt").exists()

    repo.cvfs("migrate", "import")

    assert repo.git("rev-parse", "HEAD:vendor/lib").stdout == sub_commit
    assert repo.git("ls-tree", "HEAD", "vendor/lib").stdout.startswith("160000 commit")
    assert parse_ref(repo.blob("HEAD:models/m.pt")) is not None
    assert not (repo.root / "models/m.pt").exists()  # still outside the sparse checkout
    assert (repo.root / "data/a.bin").read_bytes() == d["a2"]
    assert repo.git("status", "--porcelain").stdout == ""
