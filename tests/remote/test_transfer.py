"""upload_many into a directory archive: small objects in batches, large ones one by one."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from git_cvfs.core.model.workspace import Workspace
from git_cvfs.format.ref import Ref
from git_cvfs.local.cache import Cache
from git_cvfs.local.config import ArchiveSettings
from git_cvfs.output import Progress
from git_cvfs.remote import transfer
from git_cvfs.remote.archive import object_key
from git_cvfs.remote.filedir import FileArchive
from tests.conftest import CloudArchive, new_project, rand


class CountingProgress(Progress):
    instances: ClassVar[list[CountingProgress]] = []

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.finished = 0
        CountingProgress.instances.append(self)

    def finish(self) -> None:
        self.finished += 1
        super().finish()


def test_upload_many_stores_every_object_and_finishes_its_progress_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "Progress", CountingProgress)
    CountingProgress.instances.clear()
    monkeypatch.setattr(transfer, "BATCH_COUNT", 3)  # several batches from a few objects
    cache = Cache(tmp_path / "cvfs")
    refs = []
    for i in range(7):
        data = bytes([i]) * (100 + i)
        refs.append(Ref(*cache.put_stream([data])))
    large = bytes(range(256)) * 4097  # at or above BATCH_BELOW: stored with its own fsync
    monkeypatch.setattr(transfer, "BATCH_BELOW", len(large))
    refs.append(Ref(*cache.put_stream([large])))
    (tmp_path / "archive").mkdir()
    archive = FileArchive(ArchiveSettings("primary", (tmp_path / "archive").as_uri()))
    missing = Ref("ab" * 32, 5)  # neither in the cache nor in the archive

    outcome = transfer.upload_many(archive, cache, [*refs, missing, refs[0]], concurrency=4)

    assert sorted(outcome.done) == sorted(r.hex for r in refs)
    assert all(upload.sent for upload in outcome.done.values())
    assert list(outcome.failed) == [missing.hex]
    for ref in refs:
        stored = tmp_path / "archive" / object_key(ref.hex)
        assert stored.read_bytes() == cache.object_path(ref.hex).read_bytes()
    [progress] = CountingProgress.instances
    assert (progress.done, progress.finished) == (len(refs) + 1, 1)

    again = transfer.upload_many(archive, cache, refs, concurrency=4)  # all there: nothing sent
    assert sorted(again.done) == sorted(r.hex for r in refs)
    assert not any(upload.sent for upload in again.done.values())


def test_upload_many_to_s3_sends_each_object_and_finishes_its_progress_once(
    s3_archive: CloudArchive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "Progress", CountingProgress)
    CountingProgress.instances.clear()
    project = new_project(tmp_path, s3_archive.config(), name="cloud")
    ws = Workspace.discover(project.root)
    refs = [Ref(*ws.cache.put_stream([rand(300 + i, seed=i)])) for i in range(5)]

    outcome = transfer.upload_many(ws.archive("primary"), ws.cache, refs, concurrency=4)

    assert sorted(outcome.done) == sorted(r.hex for r in refs) and outcome.failed == {}
    assert all(upload.sent for upload in outcome.done.values())
    [progress] = CountingProgress.instances
    assert (progress.done, progress.finished) == (len(refs), 1)
