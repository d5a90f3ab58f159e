"""Content held in memory up to a bound, then spilled to a temporary file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tempfile

MEMORY_LIMIT = 4 << 20
CHUNK = 1 << 20


class SpillBuffer:
    def __init__(self, tmp_dir: Path, memory_limit: int = MEMORY_LIMIT) -> None:
        self._tmp_dir = tmp_dir
        self._limit = memory_limit
        self._parts: list[bytes] = []
        self._mem = 0
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is None and self._mem + len(chunk) <= self._limit:
            self._parts.append(chunk)
            self._mem += len(chunk)
            return
        if self._file is None:
            import tempfile  # here, not at the top: only large content spills (7 ms at start-up)

            self._tmp_dir.mkdir(parents=True, exist_ok=True)
            self._file = tempfile.NamedTemporaryFile(dir=self._tmp_dir, prefix="spill-")
            for part in self._parts:
                self._file.write(part)
            self._parts = []
            self._mem = 0
        self._file.write(chunk)

    def head(self, n: int) -> bytes:
        if self._file is None:
            return b"".join(self._parts)[:n]
        self._file.flush()
        return os.pread(self._file.fileno(), n, 0)

    def chunks(self) -> Iterator[bytes]:
        if self._file is None:
            yield from self._parts
            return
        self._file.flush()
        offset = 0
        while chunk := os.pread(self._file.fileno(), CHUNK, offset):
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts = []
