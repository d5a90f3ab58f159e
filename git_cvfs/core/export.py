"""`git cvfs archive REV -o FILE`: a tar or zip of a revision with every managed file's data in
it, streamed (git archive buffers each smudged file whole, and writes refs for the large ones).

Each object comes from the cache, or is fetched into it first, verified; plain blobs come
from git. Memory holds one buffer whatever the sizes.
"""

from __future__ import annotations

import contextlib
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from git_cvfs.core.model.refscan import scan_blobs
from git_cvfs.core.model.workspace import Workspace
from git_cvfs.errors import CvfsError, UsageError
from git_cvfs.local.git import run_git, split_z
from git_cvfs.remote.transfer import download_to_cache

FORMATS = ("tar", "tar.gz", "zip")


@dataclass
class ExportResult:
    path: Path
    files: int = 0
    materialized: int = 0
    bytes: int = 0


def format_for(output: Path, given: str | None) -> str:
    if given:
        return given
    name = output.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    return "tar"


def export(ws: Workspace, rev: str, output: Path, *, fmt: str, prefix: str = "") -> ExportResult:
    repo = ws.repo
    found = run_git(["rev-parse", "-q", "--verify", f"{rev}^{{commit}}"], cwd=repo.root, check=False)
    commit = found.stdout.decode().strip() if rev and found.returncode == 0 else ""
    if not commit:
        raise UsageError(f"{rev!r} is not a revision of this repository", hint="git cvfs archive HEAD -o data.tar")
    entries = []  # (mode, blob, path)
    for record in split_z(repo.git("ls-tree", "-r", "-z", "--full-tree", commit)):
        meta, _, path = record.partition("\t")
        mode, kind, blob = meta.split()
        if kind == "blob":
            entries.append((mode, blob, path))
    refs = dict(scan_blobs(repo, [(p, b) for m, b, p in entries if m.startswith("100")]).refs)
    mtime = int(repo.git("log", "-1", "--format=%ct", commit).decode().strip() or time.time())
    result = ExportResult(output)
    tmp = output.with_name(f".{output.name}.cvfs-tmp")
    try:
        with _Writer(tmp, fmt) as out:
            for mode, blob, path in entries:
                name = prefix + path
                ref = refs.get(path)
                if mode == "120000":
                    out.symlink(name, repo.git("cat-file", "blob", blob).decode("utf-8", "surrogateescape"), mtime)
                elif ref is not None:
                    fetched = not ws.cache.has(ref.hex, ref.size)
                    source = download_to_cache(ws.archives, ws.cache, ref, concurrency=ws.settings.concurrency)
                    with open(source, "rb") as f:
                        out.file(name, f, ref.size, mode == "100755", mtime)
                    result.materialized += 1
                    result.bytes += ref.size
                    if fetched and not ws.settings.cache_keep:
                        ws.cache.remove(ref.hex)  # fetched for the archive only: the lean cache keeps nothing
                else:
                    with _blob_stream(repo.root, blob) as (f, size):
                        out.file(name, f, size, mode == "100755", mtime)
                    result.bytes += size
                result.files += 1
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return result


@contextlib.contextmanager
def _blob_stream(root: Path, blob: str) -> Iterator[tuple[IO[bytes], int]]:
    size = int(subprocess.run(["git", "cat-file", "-s", blob], cwd=root, capture_output=True, check=True).stdout)
    proc = subprocess.Popen(["git", "cat-file", "blob", blob], cwd=root, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        yield proc.stdout, size
    finally:
        proc.stdout.close()
        proc.wait()


class _Writer:
    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.path = path

    def __enter__(self) -> _Writer:
        if self.fmt == "zip":
            self.zip: zipfile.ZipFile | None = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
            self.tar: tarfile.TarFile | None = None
        else:
            self.zip = None
            self.tar = tarfile.open(self.path, "w:gz" if self.fmt == "tar.gz" else "w", format=tarfile.PAX_FORMAT)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zip is not None:
            self.zip.close()
        if self.tar is not None:
            self.tar.close()

    def file(self, name: str, f: IO[bytes], size: int, executable: bool, mtime: int) -> None:
        if self.tar is not None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, mtime, 0o755 if executable else 0o644
            self.tar.addfile(info, f)
            return
        assert self.zip is not None
        zinfo = zipfile.ZipInfo(name, time.localtime(mtime)[:6])
        zinfo.external_attr = (0o100755 if executable else 0o100644) << 16
        zinfo.compress_type = zipfile.ZIP_DEFLATED
        with self.zip.open(zinfo, "w", force_zip64=size > (1 << 31)) as out:
            written = 0
            while chunk := f.read(1 << 20):
                out.write(chunk)
                written += len(chunk)
        if written != size:
            raise CvfsError(f"{name}: wrote {written} bytes of {size}")

    def symlink(self, name: str, target: str, mtime: int) -> None:
        if self.tar is not None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, mtime
            self.tar.addfile(info)
            return
        assert self.zip is not None
        zinfo = zipfile.ZipInfo(name, time.localtime(mtime)[:6])
        zinfo.external_attr = 0o120777 << 16
        self.zip.writestr(zinfo, target)
