"""What the archives are asked, and what is kept of their answers."""

from __future__ import annotations

import hashlib

from git_cvfs.core.model.holdings import LIST_THRESHOLD, archive_view
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.ref import parse_ref
from tests.conftest import Project, rand


def test_a_listing_keeps_only_the_objects_asked_for(project: Project) -> None:
    """Past LIST_THRESHOLD objects the archive is listed rather than asked one by one. An
    archive a team shares holds every repository's objects and every old version: a listing
    kept whole made reconcile's memory follow the archive's size, not the repository's."""
    for i in range(3):
        project.write(f"data/f{i}.bin", rand(20_000, 70 + i))
    project.commit_all()
    ours = {parse_ref(project.blob(f"HEAD:data/f{i}.bin")).hex for i in range(3)}  # type: ignore[union-attr]
    for i in range(5):  # another repository's objects, in the same archive
        data = rand(1_000, 80 + i)
        hex_digest = hashlib.sha256(data).hexdigest()
        path = project.archive / "objects" / hex_digest[:2] / hex_digest[2:4] / hex_digest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    unknown = {hashlib.sha256(b"%d" % i).hexdigest() for i in range(LIST_THRESHOLD)}  # never stored
    ws = Workspace.discover(project.root)

    view = archive_view(ws, "primary", ours | unknown)  # more than the threshold: one listing

    assert set(view) == ours
    assert len(archive_view(ws, "primary", set(), list_all=True)) == 8  # reconcile --orphans: all of it
