"""History rewriting through git's own tools: `git fast-export` read as a stream of commits,
`git fast-import` written to, and blobs streamed out of `git cat-file --batch`.

fast-export runs with --no-data (blobs are named by id, never sent) and --full-tree (every
commit lists its whole tree), so each commit can be rewritten on its own: memory holds one
commit's file list, never the history, and never a whole blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from git_cvfs.errors import GitError
from git_cvfs.format.gitattributes import quote_c, unquote_c
from git_cvfs.local.git import Repo

EXPORT_OPTIONS = (
    "--no-data",
    "--full-tree",
    "--show-original-ids",
    "--reference-excluded-parents",
    "--use-done-feature",
    "--signed-tags=strip",
    "--tag-of-filtered-object=rewrite",
    "--reencode=no",
)


@dataclass
class Entry:
    mode: str
    blob: str  # a blob id, or a fast-import mark (":N") for content this rewrite wrote


@dataclass
class Commit:
    ref: str
    header: bytes  # from the `commit` line to the last from/merge line, passed on unchanged
    files: dict[str, Entry] = field(default_factory=dict)
    mark: str = ""
    original: str = ""


@dataclass
class Passthrough:
    data: bytes
    ref: str = ""  # the ref a `reset` or `tag` command writes, if it is one


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise GitError("git fast-export ended in the middle of a message")
    return data


def read_export(stream: IO[bytes]) -> Iterator[Commit | Passthrough]:
    """The commands of a fast-export stream: commits parsed, everything else as it came."""
    line = stream.readline()
    while line:
        if line.startswith(b"commit "):
            commit = Commit(line[7:-1].decode("utf-8", "surrogateescape"), b"")
            header = [line]
            line = stream.readline()
            while line and line != b"\n":
                if line.startswith(b"data "):
                    header.append(line + _read_exact(stream, int(line[5:])))
                elif line.startswith(b"M "):
                    mode, blob, raw = line[2:-1].split(b" ", 2)
                    path = raw.decode("utf-8", "surrogateescape")
                    if path.startswith('"'):
                        path = unquote_c(path)
                    commit.files[path] = Entry(mode.decode(), blob.decode())
                elif line == b"deleteall\n":
                    commit.files.clear()
                elif line.startswith((b"D ", b"C ", b"R ", b"N ")):
                    raise GitError(f"unexpected command in a full-tree export: {line[:40]!r}")
                else:
                    if line.startswith(b"mark "):
                        commit.mark = line[5:-1].decode()
                    elif line.startswith(b"original-oid "):
                        commit.original = line[13:-1].decode()
                    header.append(line)
                line = stream.readline()
            commit.header = b"".join(header)
            yield commit
        elif line.startswith(b"data "):
            yield Passthrough(line + _read_exact(stream, int(line[5:])))
        elif line.startswith(b"reset "):
            yield Passthrough(line, ref=line[6:-1].decode("utf-8", "surrogateescape"))
        elif line.startswith(b"tag "):
            yield Passthrough(line, ref="refs/tags/" + line[4:-1].decode("utf-8", "surrogateescape"))
        else:
            yield Passthrough(line)
        line = stream.readline()


@contextlib.contextmanager
def fast_export(repo: Repo, revs: Sequence[str]) -> Iterator[Iterator[Commit | Passthrough]]:
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            ["git", "fast-export", *EXPORT_OPTIONS, *revs, "--"],
            cwd=repo.root,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        assert proc.stdout is not None
        try:
            yield read_export(proc.stdout)
        finally:
            proc.stdout.close()
            proc.kill() if proc.poll() is None else None
            code = proc.wait()
        if code != 0:
            err.seek(0)
            detail = err.read().decode(errors="replace").strip().splitlines()
            raise GitError(f"`git fast-export` failed: {detail[-1] if detail else f'exit {code}'}")


class FastImport:
    """A `git fast-import` to write a rewritten history into. Refs move only when the whole
    stream arrived: abort() (or any exception inside the with block) kills it first."""

    _MARK_BASE = 1 << 40  # marks for blobs written here, far above fast-export's commit marks

    def __init__(self, repo: Repo) -> None:
        self._marks = tempfile.NamedTemporaryFile(prefix="cvfs-marks-", delete=False)
        self._marks.close()
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["git", "fast-import", "--quiet", "--force", f"--export-marks={self._marks.name}"],
            cwd=repo.root,
            stdin=subprocess.PIPE,
            stderr=self._err,
        )
        assert self._proc.stdin is not None
        self._in = self._proc.stdin
        self._next = self._MARK_BASE
        self._written: dict[str, str] = {}  # content key -> mark

    def write(self, data: bytes) -> None:
        try:
            self._in.write(data)
        except BrokenPipeError:
            self._fail()

    def blob(self, data: bytes) -> str:
        """A mark for a blob with these bytes, written once however often it is asked for."""
        key = hashlib.sha1(data).hexdigest()
        if key not in self._written:
            mark = self._new_mark()
            self.write(b"blob\nmark %s\ndata %d\n" % (mark.encode(), len(data)) + data + b"\n")
            self._written[key] = mark
        return self._written[key]

    def blob_stream(self, key: str, size: int, chunks: Iterable[bytes]) -> str:
        """A mark for a blob of size bytes streamed from chunks, written once per key."""
        if key not in self._written:
            mark = self._new_mark()
            self.write(b"blob\nmark %s\ndata %d\n" % (mark.encode(), size))
            sent = 0
            for chunk in chunks:
                sent += len(chunk)
                self.write(chunk)
            if sent != size:
                raise GitError(f"blob {key} gave {sent} bytes, expected {size}")
            self.write(b"\n")
            self._written[key] = mark
        return self._written[key]

    def commit(self, commit: Commit) -> None:
        lines = [commit.header, b"deleteall\n"]
        for path, entry in sorted(commit.files.items()):
            lines.append(b"M %s %s %s\n" % (entry.mode.encode(), entry.blob.encode(), _path_bytes(path)))
        lines.append(b"\n")
        self.write(b"".join(lines))

    def _new_mark(self) -> str:
        self._next += 1
        return f":{self._next}"

    def finish(self) -> dict[str, str]:
        """Close the stream, wait for git, and return mark -> new object id."""
        with contextlib.suppress(BrokenPipeError):
            self._in.close()
        if self._proc.wait() != 0:
            self._fail()
        marks = {}
        for line in Path(self._marks.name).read_text().splitlines():
            mark, _, oid = line.partition(" ")
            marks[mark] = oid
        self._cleanup()
        return marks

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._in.close()
        self._cleanup()

    def _fail(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._err.seek(0)
        detail = self._err.read().decode(errors="replace").strip().splitlines()
        self._cleanup()
        raise GitError(f"`git fast-import` failed: {detail[0] if detail else 'it stopped reading'}")

    def _cleanup(self) -> None:
        Path(self._marks.name).unlink(missing_ok=True)
        if not self._err.closed:
            self._err.close()


def _path_bytes(path: str) -> bytes:
    return quote_c(path).encode("utf-8", "surrogateescape")


def all_blob_sizes(repo: Repo) -> dict[str, int]:
    """Every blob this repository holds, with its size: one git call however long the history."""
    proc = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectname) %(objectsize)"],
        cwd=repo.root,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"`git cat-file --batch-all-objects` failed: {proc.stderr.decode(errors='replace').strip()}")
    sizes = {}
    for line in proc.stdout.splitlines():
        if line.startswith(b"blob "):
            _, name, size = line.split()
            sizes[name.decode()] = int(size)
    return sizes
