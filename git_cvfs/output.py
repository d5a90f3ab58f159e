"""All user-facing output: stdout carries data only; messages and progress go to stderr."""

from __future__ import annotations

import os
import sys
import threading
import time

from git_cvfs.format.size import format_size

# Secrets that can ride inside text we print: a password in a URL (`http://user:pass@host`,
# which botocore repeats in its errors), an Azure connection string's key or SAS signature.
_SECRET_PATTERNS = (
    (r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s\"']+@", r"\1***@"),
    (r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s\"']+", r"\1=***"),
    (r"(?i)([?&]sig=)[^&\s\"']+", r"\1***"),
)


def redact(text: str) -> str:
    """Text with any credential it carries replaced by ***. Everything printed passes here."""
    if "@" not in text and "=" not in text:  # nearly every line: no pattern can match
        return text
    import re  # here: the filter prints a line only when something is wrong

    for pattern, replacement in _SECRET_PATTERNS:
        text = re.sub(pattern, replacement, text)
    return text


def info(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)


def warn(message: str, hint: str | None = None) -> None:
    print(redact(f"warning: {message}"), file=sys.stderr, flush=True)
    if hint:
        print(redact(f"hint: {hint}"), file=sys.stderr, flush=True)


def error(message: str, hint: str | None = None) -> None:
    print(redact(f"error: {message}"), file=sys.stderr, flush=True)
    if hint:
        print(redact(f"hint: {hint}"), file=sys.stderr, flush=True)


def data(text: str) -> None:
    text = redact(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def emit_json(obj: object) -> None:
    import json  # here: the filter, which git waits for, never writes JSON (3 ms at start-up)

    sys.stdout.write(redact(json.dumps(obj, sort_keys=True, separators=(",", ":"))) + "\n")
    sys.stdout.flush()


# Objects this large report their bytes while they move (moved(), from the transfers: ranged
# downloads, multipart uploads); smaller ones count when they are done.
STREAMED_FROM = 64 << 20
_active: list[Progress] = []  # the progress line bytes moving now belong to (one at a time)


def moved(nbytes: int) -> None:
    """Bytes of a large object that just moved to or from an archive."""
    if _active:
        _active[-1].stream(nbytes)


class Progress:
    """git-style progress on stderr, only when stderr is a terminal (never in --json output,
    which goes to stdout anyway): `Downloading objects:  45% (9/20), 540 MiB / 1.2 GiB | 85 MiB/s`.
    The bytes move as they are transferred, not only when a whole object is done."""

    def __init__(self, title: str, total: int, total_bytes: int = 0) -> None:
        self.title = title
        self.total = total
        self.total_bytes = total_bytes
        self.done = 0
        self.bytes = 0  # of objects done
        self._streamed = 0  # bytes reported by moved() so far
        self._counted = 0  # of those, bytes of objects since done (in self.bytes already)
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self.enabled = total > 0 and sys.stderr.isatty() and os.environ.get("GIT_CVFS_NO_PROGRESS") != "1"
        if self.enabled:
            _active.append(self)
            self._render(final=False)  # at once: a long first object is not silence

    def advance(self, count: int = 0, nbytes: int = 0) -> None:
        """count objects done, nbytes their size (what moved() said of them is not counted twice)."""
        with self._lock:
            self.done += count
            self.bytes += nbytes
            if nbytes >= STREAMED_FROM:
                self._counted += min(nbytes, self._streamed - self._counted)
            self._maybe_render()

    def stream(self, nbytes: int) -> None:
        with self._lock:
            self._streamed += nbytes
            self._maybe_render()

    def _maybe_render(self) -> None:
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._render(final=False)

    def _shown_bytes(self) -> int:
        return self.bytes + max(0, self._streamed - self._counted)

    def _render(self, *, final: bool) -> None:
        shown = self._shown_bytes()
        if self.total_bytes:
            pct = 100 * min(shown, self.total_bytes) // self.total_bytes
        else:
            pct = 100 * self.done // self.total if self.total else 100
        if self.done < self.total:
            pct = min(pct, 99)
        elif final:
            pct = 100
        elapsed = max(time.monotonic() - self._start, 1e-6)
        line = f"\r{self.title}: {pct:3d}% ({self.done}/{self.total})"
        if self.total_bytes:
            line += f", {format_size(shown)} / {format_size(self.total_bytes)} | {format_size(shown / elapsed)}/s"
        sys.stderr.write(line + ("\x1b[K" if not final else "") + (", done.\n" if final else ""))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            if self in _active:
                _active.remove(self)
            self._render(final=True)
