"""What this machine has verified each archive to hold, so hooks with nothing new make no
network call.

One append-only file per archive, one `<hex> <etag>` line per object, written only after
the archive's copy was shown to be the object (remote/verify.py), with the etag it had
then. Where an archive changes an object's etag on every write, an unchanged etag
later still vouches for those bytes; nothing else is read from this log as proof.

`git cvfs gc` deletes objects, so it changes the archive's epoch marker first (GC_EPOCH_KEY in
remote/archive.py). The log keeps the marker's etag it was written under beside it; a
pre-push that finds another one forgets the log and asks the archive about every object.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from git_cvfs.local.config import ArchiveSettings


def log_key(settings: ArchiveSettings) -> str:
    """What a log is kept per: the URL, and the endpoint and profile that decide which store
    answers (the same URL behind another endpoint is another archive)."""
    extra = [f"{k}={v}" for k, v in (("endpoint", settings.endpoint), ("profile", settings.profile)) if v]
    return " ".join([settings.url, *extra])


class ArchivedLog:
    def __init__(self, cvfs_dir: Path, settings: ArchiveSettings) -> None:
        digest = hashlib.sha256(log_key(settings).encode()).hexdigest()[:16]
        # "verified/": logs from before every entry was verified ("archived/") are not read.
        self.path = cvfs_dir / "verified" / digest
        self._known: dict[str, str] | None = None

    def known(self) -> dict[str, str]:
        if self._known is None:
            self._known = {}
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                data = b""
            for line in data.splitlines():
                hex_digest, _, etag = line.decode("utf-8", "replace").partition(" ")
                if len(hex_digest) == 64:
                    self._known[hex_digest] = etag
        return self._known

    def record(self, entries: dict[str, str]) -> None:
        new = {h: e for h, e in entries.items() if self.known().get(h) != e}
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(f"{h} {e}\n" for h, e in new.items()).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.known().update(new)

    @property
    def _epoch_path(self) -> Path:
        return self.path.with_name(self.path.name + ".epoch")

    def adopt_epoch(self, epoch: str) -> None:
        """The archive's epoch marker now (its etag; "" when it has none): a log written under
        another one is forgotten, since gc may have deleted what it lists since."""
        try:
            seen = self._epoch_path.read_text().strip()
        except FileNotFoundError:
            seen = ""
        if seen == epoch:
            return
        self.forget_all()
        self._epoch_path.parent.mkdir(parents=True, exist_ok=True)
        self._epoch_path.write_text(epoch + "\n")

    def forget_all(self) -> None:
        self.path.unlink(missing_ok=True)
        self._known = {}
