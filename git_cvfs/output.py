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


class Progress:
    """git-style progress on stderr, only when stderr is a terminal:
    `Uploading objects: 45% (9/20), 1.2 GiB | 85 MiB/s`."""

    def __init__(self, title: str, total: int, total_bytes: int = 0) -> None:
        self.title = title
        self.total = total
        self.total_bytes = total_bytes
        self.done = 0
        self.bytes = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        self.enabled = total > 0 and sys.stderr.isatty() and os.environ.get("GIT_CVFS_NO_PROGRESS") != "1"

    def advance(self, count: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.done += count
            self.bytes += nbytes
            now = time.monotonic()
            if self.enabled and (now - self._last > 0.1 or self.done == self.total):
                self._last = now
                self._render(final=False)

    def _render(self, *, final: bool) -> None:
        pct = 100 * self.done // self.total if self.total else 100
        elapsed = max(time.monotonic() - self._start, 1e-6)
        line = f"\r{self.title}: {pct:3d}% ({self.done}/{self.total})"
        if self.bytes:
            line += f", {format_size(self.bytes)} | {format_size(self.bytes / elapsed)}/s"
        sys.stderr.write(line + (", done.\n" if final else ""))
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            self._render(final=True)
