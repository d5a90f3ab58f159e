from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import cvfs


def test_try_runs_every_step_and_checks_itself(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    out = cvfs(tmp_path, "try", "--path", str(demo))
    for step in (
        "git cvfs init",
        "git add .",
        "git push",
        "git clone",
        "GIT_CVFS_SKIP_SMUDGE=1 git clone",
        "git cvfs ensure",
        "git cvfs status",
        "git cvfs offload",
        "git cvfs reconcile",
    ):
        assert step in out.stdout, step
    assert out.stdout.count("✓") == 6 and "Done." in out.stdout
    assert "no drift" in out.stdout
    assert not Path(os.environ["HOME"], ".gitconfig").read_text().count("cvfs")  # the user's config untouched


def test_try_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    proc = cvfs(tmp_path, "try", "--path", str(tmp_path / "busy"), check=False)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "busy" / "file").read_text() == "mine"
