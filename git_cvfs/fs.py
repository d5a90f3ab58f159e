"""`cvfs://`: a repository's files at a revision as an fsspec filesystem, for data loaders.

    pandas.read_parquet("cvfs://data/x.parquet")                  # the repository around cwd, HEAD
    fsspec.open("cvfs:///path/to/repo:v1.2@data/x.parquet")       # [REPO:][REV@]PATH, as git://
    fsspec.filesystem("cvfs", repo="/path/to/repo", rev="main")   # or as keyword arguments

Registered through the `fsspec.specs` entry point. A managed file is read from the cache, or
fetched into it from the archives first and verified against its oid before a byte is returned;
a plain file from git's object store. The work tree is never written. The revision is resolved
once, when the filesystem is made (fsspec keeps instances: the same arguments give the same one).

    fsspec.filesystem("cvfs", budget="20GB")                      # a data set larger than the disk

With a budget, the objects this filesystem fetched are dropped from the cache, least recently
opened first, once they hold more than that (an archive gave them, verified: they can be fetched
again); never one a reader has open, nor one that was in the cache before. Without one, fetched
objects stay in the cache until `git cvfs prune` drops those the archives hold.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import threading
from collections.abc import Callable
from typing import Any

from fsspec.spec import AbstractFileSystem

from git_cvfs.core.model.hydrate import Hydrator
from git_cvfs.core.model.revision import Entry, RevisionTree
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError
from git_cvfs.format.size import parse_size
from git_cvfs.local.git import run_git


class CvfsFileSystem(AbstractFileSystem):  # type: ignore[misc]
    protocol = "cvfs"
    root_marker = ""

    def __init__(
        self, repo: str | None = None, rev: str | None = None, budget: int | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.workspace = Workspace.discover(repo or os.getcwd())
        self.tree = RevisionTree(self.workspace.repo, rev or "HEAD")
        self.budget = parse_size(budget, what="budget") if isinstance(budget, str) else budget
        self._hydrator: Hydrator | None = None
        self._hydrator_lock = threading.Lock()

    def _budgeted(self) -> Hydrator:
        """The fetcher that keeps this filesystem's objects within its budget, made at first use."""
        with self._hydrator_lock:
            if self._hydrator is None:
                ws = self.workspace
                workers = min(4, ws.settings.concurrency)
                self._hydrator = Hydrator(ws.archives, ws.cache, {}, workers=workers, budget=self.budget)
            return self._hydrator

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("cvfs://"):  # a URL: [REPO:][REV@]PATH; a bare path is taken as it is
            path = path.removeprefix("cvfs://")
            if ":" in path:
                path = path.split(":", 1)[1]
            if "@" in path:
                path = path.split("@", 1)[1]
        return path.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, str]:
        path = path.removeprefix("cvfs://")
        out = {}
        if ":" in path:
            out["repo"], path = path.split(":", 1)
        if "@" in path:
            out["rev"], path = path.split("@", 1)
        return out

    # -- the tree --------------------------------------------------------------------------

    def _entry(self, path: str) -> Entry:
        entry = self.tree.get(self._strip_protocol(path))
        if entry is None:
            raise FileNotFoundError(errno.ENOENT, f"{path}: not in {self.tree.rev} ({self.tree.commit[:12]})")
        return entry

    def _info(self, path: str, entry: Entry) -> dict[str, Any]:
        directory = stat.S_ISDIR(entry.mode)
        return {
            "name": path,
            "size": entry.size,
            "type": "directory" if directory else "file",
            "mode": entry.mode,
            "managed": entry.ref is not None,
            "oid": entry.ref.oid if entry.ref is not None else None,
            "islink": stat.S_ISLNK(entry.mode),
        }

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        return self._info(path, self._entry(path))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        entry = self._entry(path)
        if not stat.S_ISDIR(entry.mode):
            found = [self._info(path, entry)]
        else:
            found = []
            for name in self.tree.children[path]:
                child = f"{path}/{name}" if path else name
                found.append(self._info(child, self.tree.entries[child]))
        return found if detail else [f["name"] for f in found]

    # -- reading ---------------------------------------------------------------------------

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise OSError(errno.EROFS, f"cvfs:// is read-only (asked for mode {mode!r}): change files in a work tree")
        path = self._strip_protocol(path)
        entry = self._entry(path)
        if stat.S_ISDIR(entry.mode):
            raise IsADirectoryError(errno.EISDIR, path)
        if entry.ref is None:
            blob = run_git(["cat-file", "blob", entry.blob], cwd=self.workspace.repo.root).stdout
            return io.BytesIO(blob)
        from git_cvfs.remote.transfer import download_to_cache

        ws = self.workspace
        ref = entry.ref
        try:
            if self.budget is None:
                cached = download_to_cache(ws.archives, ws.cache, ref, concurrency=ws.settings.concurrency)
                return open(cached, "rb")
            hydrator = self._budgeted()
            fd = hydrator.open(ref)  # held in the cache until this file is closed
        except CvfsError as exc:
            hint = f" (hint: {exc.hint})" if exc.hint else ""
            raise OSError(errno.EIO, f"cvfs://{path}: {exc.message}{hint}") from None
        return _Held(fd, lambda: hydrator.close(ref))

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        with self._open(path) as f:
            size = self.info(path)["size"]
            begin = 0 if start is None else (start if start >= 0 else max(0, size + start))
            stop = size if end is None else (end if end >= 0 else max(0, size + end))
            f.seek(begin)
            return f.read(max(0, stop - begin))  # type: ignore[no-any-return]


class _Held(io.BufferedReader):
    """A read-only file over a descriptor, which tells the budget's fetcher when it is closed
    (until then its object stays in the cache)."""

    def __init__(self, fd: int, on_close: Callable[[], None]) -> None:
        super().__init__(io.FileIO(fd, "rb"))
        self._on_close: Callable[[], None] | None = on_close

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()
