"""`git cvfs offload PATH` on a file in scope that is not managed yet (untracked or gitignored):
registered, archived (verified), recorded and replaced by its ref in one step; --dry-run shows
exactly that and changes nothing; a file no tracked pattern covers is an error with the fix."""

from __future__ import annotations

import json

from tests.conftest import Project, rand, ref_of


def test_a_gitignored_file_is_registered_archived_and_offloaded_in_one_step(project: Project) -> None:
    project.write(".gitignore", b"data/gen/\n")
    project.write("data/keep.bin", rand(20_000, 1))
    project.commit_all()
    out = rand(300_000, 2)
    project.write("data/gen/out.bin", out)
    ref = ref_of(out)

    plan = project.cvfs("offload", "--dry-run", "data/gen/out.bin")
    assert (
        f"would register, archive and offload data/gen/out.bin  293.0 KiB  {project.archive.as_uri()}/objects/"
        in plan.stdout
    )
    assert ref.hex in plan.stdout and "would free 293.0 KiB in 1 file(s)" in plan.stdout
    assert (project.root / "data/gen/out.bin").read_bytes() == out  # a dry run changes nothing
    assert not project.archive_path(ref.hex).exists()
    assert (
        "did not match any file git-cvfs manages" in project.cvfs("preflight", "data/gen/out.bin", check=False).stderr
    )

    done = project.cvfs("offload", "data/gen/out.bin")
    assert "registered, archived, offloaded data/gen/out.bin" in done.stdout
    assert (project.root / "data/gen/out.bin").read_bytes() == ref.encode()
    assert project.archive_path(ref.hex).read_bytes() == out
    still = json.loads(project.cvfs("preflight", "--json", "data/gen/out.bin", check=False).stdout)
    assert still["still_refs"] == ["data/gen/out.bin"]  # managed now: its row is its record
    project.cvfs("ensure", "data/gen/out.bin")
    assert (project.root / "data/gen/out.bin").read_bytes() == out


def test_an_untracked_file_in_a_tracked_directory_too(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 1))
    project.commit_all()
    new = rand(150_000, 3)
    project.write("data/new/b.bin", new)
    project.cvfs("offload", "data/new")
    assert (project.root / "data/new/b.bin").read_bytes() == ref_of(new).encode()
    assert project.archive_path(ref_of(new).hex).read_bytes() == new


def test_a_file_no_tracked_pattern_covers_is_an_error_with_the_fix(project: Project) -> None:
    project.write("data/a.bin", rand(20_000, 1))
    project.commit_all()
    raw = rand(100_000, 4)
    project.write("notes/big.bin", raw)
    proc = project.cvfs("offload", "notes/big.bin", check=False)
    assert proc.returncode == 2
    assert "error: notes/big.bin is not managed, and no tracked pattern covers it" in proc.stderr
    assert "hint: track its directory first: git cvfs track 'notes/**'" in proc.stderr
    assert (project.root / "notes/big.bin").read_bytes() == raw
    assert not project.archive_path(ref_of(raw).hex).exists()
