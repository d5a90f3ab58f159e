from __future__ import annotations

from pathlib import Path

import pytest

from git_cvfs.errors import ConfigError
from git_cvfs.local.config import DEFAULT_MIN_SIZE, default_archive_url, load_settings
from git_cvfs.local.git import Repo
from tests.conftest import git


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    git(tmp_path, "init", "-q", "r")
    return Repo.discover(tmp_path / "r")


def write_config(repo: Repo, text: str) -> None:
    (repo.root / ".cvfs").mkdir(exist_ok=True)
    (repo.root / ".cvfs" / "config").write_text(text)


def test_defaults_use_the_embedded_archive(repo: Repo) -> None:
    s = load_settings(repo)
    assert s.primary.url == default_archive_url()
    assert s.min_size == DEFAULT_MIN_SIZE and not s.configured


def test_full_config_is_read(repo: Repo) -> None:
    write_config(
        repo,
        '[archive "primary"]\n url = file:///srv/a\n[archive "secondary"]\n url = file:///srv/b\n'
        '[scope]\n prefix = data/\n minSize = 50MB\n[scope "data/model_weights/"]\n minSize = 5MB\n'
        "[fetch]\n include = data/**\n exclude = data/raw/**\n[smudge]\n streamMax = 1GB\n"
        "[transfer]\n concurrency = 4\n[cache]\n keep = true\n",
    )
    s = load_settings(repo)
    assert s.archives["secondary"].url == "file:///srv/b"
    assert s.min_size_for("data/x.bin") == 50 << 20
    assert s.min_size_for("data/model_weights/w.pt") == 5 << 20
    assert s.in_scope("data/x") and not s.in_scope("src/x")
    assert s.wants_fetch("data/a.bin") and not s.wants_fetch("data/raw/a.bin") and not s.wants_fetch("other/a")
    assert s.stream_max == 1 << 30 and s.concurrency == 4 and s.cache_keep


def test_git_config_overrides_file_and_env_overrides_both(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(repo, "[transfer]\n concurrency = 4\n[scope]\n minSize = 1MB\n")
    git(repo.root, "config", "cvfs.transfer.concurrency", "6")
    assert load_settings(repo).concurrency == 6
    monkeypatch.setenv("GIT_CVFS_TRANSFER_CONCURRENCY", "2")
    assert load_settings(repo).concurrency == 2
    assert load_settings(repo).min_size == 1 << 20


def test_skip_smudge_env_fetches_nothing(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CVFS_SKIP_SMUDGE", "1")
    assert not load_settings(repo).wants_fetch("data/a.bin")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scope]\n minSiz = 5MB\n", "unknown configuration key 'scope.minsiz'"),
        ("[bogus]\n x = 1\n", "unknown configuration key"),
        ("[scope]\n minSize = lots\n", "invalid scope.minsize"),
        ("[smudge]\n streamMax = -1\n", "invalid smudge.streammax"),
        ("[transfer]\n concurrency = 0\n", "invalid transfer.concurrency"),
        ("[transfer]\n concurrency = $(rm -rf ~)\n", "invalid transfer.concurrency"),
        ("[cache]\n keep = maybe\n", "invalid cache.keep"),
        ('[archive "tertiary"]\n url = file:///x\n', "unknown archive name"),
        ('[archive "secondary"]\n url = file:///x\n', "without a primary"),
        ('[archive "primary"]\n endpoint = http://x\n', "has no url"),
        ("[scope\n", "cannot read configuration"),
    ],
)
def test_bad_config_is_a_clear_error(repo: Repo, text: str, message: str) -> None:
    write_config(repo, text)
    with pytest.raises(ConfigError) as info:
        load_settings(repo)
    assert message in info.value.message
    assert info.value.hint


def test_a_config_file_larger_than_any_real_one_is_refused(repo: Repo) -> None:
    write_config(repo, "[scope]\n minSize = 1MB\n" + "# padding\n" * 20_000)
    with pytest.raises(ConfigError, match=r"\.cvfs/config is \d+ bytes"):
        load_settings(repo)


def test_committed_archive_locations_are_marked_and_approvals_are_read(repo: Repo) -> None:
    write_config(repo, '[archive "primary"]\n url = s3://b/p\n[archive "secondary"]\n url = file:///srv/b\n')
    git(repo.root, "config", "cvfs.archive.secondary.url", "file:///srv/mine")  # the user's own
    git(repo.root, "config", "--add", "cvfs.trusted", "s3://B endpoint=HTTP://Host:9/")
    s = load_settings(repo)
    assert s.archives["primary"].committed and not s.archives["secondary"].committed
    assert s.trusted == {"s3://b endpoint=http://host:9"}
    git(repo.root, "config", "cvfs.archive.secondary.endpoint", "http://x")
    write_config(repo, '[archive "primary"]\n url = s3://b/p\n[archive "secondary"]\n url = s3://c\n profile = p\n')
    assert load_settings(repo).archives["secondary"].committed  # its profile still comes from the repository
