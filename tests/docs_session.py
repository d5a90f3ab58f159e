"""Run the console sessions in README.md and docs/*.md as they are written, with prysk.

Each document is one shell session: its ```console blocks run in order, in one bash, from a
fresh HOME, and what each command prints (stdout and stderr, as a terminal shows them) must
match what the document shows. prysk (a maintained fork of cram) runs the session and
compares; this module only turns markdown into prysk's test format:

- `$ command` and `> continuation` lines are commands; the lines after them, their output.
- A line `(exit N)` after a command's output: it exits N (prysk's `[N]`).
- Hashes (7 to 64 hex digits with a digit among them) and timings (`0.4 s`, `12 ms`,
  `85 MiB/s`) are masked: they differ on every run.
- Paths under /home/ada, /srv and /tmp/wf are the session's own directories; the
  path of the git-cvfs executable (`…/bin/git-cvfs`) is masked.
- Steps a reader need not see (making the 80 MB file a page talks about) sit in HTML
  comments, which markdown does not render:

      <!-- docs-test
      $ head -c 80000000 /dev/urandom > data/raw/images.tar
      -->

  and `<!-- docs-test: not-run REASON -->` marks a block that cannot run here (a command
  that needs AWS itself), which the test reports and counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```console\s*$")
HIDDEN_START = "<!-- docs-test"
NOT_RUN = re.compile(r"^<!-- docs-test: not-run (.+?) -->$")
EXIT = re.compile(r"^\(exit (\d+)\)$")
# Paths the documents use, mapped to the session's directory ($TMPDIR in prysk's output).
PATHS = ("/home/ada", "/srv", "/tmp/wf")
# Endpoints of the S3-compatible server and Azurite the pages show, mapped to the test's servers.
ENDPOINTS = {"http://127.0.0.1:9000": "$S3_ENDPOINT", "http://127.0.0.1:10000": "$AZURITE"}
PORT = re.compile(r"127\.0\.0\.1:\d+")
ROUNDTRIP = re.compile(r"roundtrip-\d+-[0-9a-f]{8}")  # doctor's test object: a pid and random bytes
HEX = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b")
EXE = re.compile(r"(?:\$TMPDIR)?/\S*/bin/git-cvfs\b")  # where git-cvfs is installed differs by machine
OBJECT = re.compile(r"objects/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")  # an archive key: a hash too
TIMING = re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|s|[KMG]i?B/s)\b")
PID = re.compile(r"\bpid \d+\b")  # a daemon's process id (git cvfs mount --status)
STAMP = re.compile(r"cvfs-migrate/\d{8}-\d{6}(?:-\d+)?")  # where migrate keeps the originals: a time


@dataclass
class Session:
    lines: list[bytes] = field(default_factory=list)  # prysk's test lines, indented by two spaces
    commands: int = 0
    not_run: list[str] = field(default_factory=list)


def _command(text: str) -> str:
    for endpoint, var in ENDPOINTS.items():
        text = text.replace(endpoint, var)
    for path in PATHS:
        text = text.replace(path, "$TMPDIR" + path)
    return text


def _expected(text: str) -> str:
    for path in PATHS:
        text = text.replace(path, "$TMPDIR" + path)
    masks = (EXE, OBJECT, ROUNDTRIP, PORT, PID, STAMP, HEX, TIMING)
    if not any(m.search(text) for m in masks):
        return _literal(text)
    pattern = ""
    pos = 0
    found = [m for mask in masks for m in mask.finditer(text)]
    for m in sorted(found, key=lambda m: (m.start(), -m.end())):
        if m.start() < pos:
            continue
        pattern += re.escape(text[pos : m.start()])
        if EXE.fullmatch(m.group()):
            pattern += r"/\S*/bin/git-cvfs"
        elif ROUNDTRIP.fullmatch(m.group()):
            pattern += r"roundtrip-\d+-[0-9a-f]{8}"
        elif PORT.fullmatch(m.group()):
            pattern += r"127\.0\.0\.1:\d+"
        elif PID.fullmatch(m.group()):
            pattern += r"pid \d+"
        elif STAMP.fullmatch(m.group()):
            pattern += r"cvfs-migrate/\d{8}-\d{6}(?:-\d+)?"
        elif OBJECT.fullmatch(m.group()):
            pattern += r"objects/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}"
        elif HEX.fullmatch(m.group()):
            pattern += r"[0-9a-f]{7,64}"
        else:
            pattern += r"\d+(?:\.\d+)? ?(?:ms|s|[KMG]i?B/s)"
        pos = m.end()
    pattern += re.escape(text[pos:])
    return pattern + " (re)"


def _literal(text: str) -> str:
    # prysk reads a line ending in " (re)", " (glob)" or " (esc)" as a pattern: keep such text literal.
    if text.endswith((" (re)", " (glob)", " (esc)")):
        return re.escape(text) + " (re)"
    return text


def _add_block(session: Session, block: list[str]) -> None:
    for n, raw in enumerate(block):
        line = raw.rstrip("\n")
        following = next((b for b in block[n + 1 :] if b.strip()), None)
        if line == "":
            # Between commands: the reader's spacing. Inside one command's output: a blank line of it.
            if following is not None and not following.startswith(("$ ", "(exit ")) and following != "$":
                if session.lines and not session.lines[-1].startswith(b"  $"):
                    session.lines.append(b"  \n")
            continue
        if line.startswith("$ ") or line == "$":
            session.commands += 1
            session.lines.append(("  $ " + _command(line[2:])).rstrip().encode() + b"\n")
        elif line.startswith("> "):
            session.lines.append(("  > " + _command(line[2:])).encode() + b"\n")
        elif m := EXIT.match(line):
            session.lines.append(f"  [{m.group(1)}]\n".encode())
        else:
            session.lines.append(("  " + _expected(line)).encode() + b"\n")


def parse(markdown: str) -> Session:
    """The document's session: its console blocks and hidden steps, in order."""
    session = Session()
    lines = markdown.splitlines()
    i = 0
    skip_next = None
    while i < len(lines):
        line = lines[i]
        if m := NOT_RUN.match(line.strip()):
            skip_next = m.group(1)
        elif line.strip() == HIDDEN_START:
            end = lines.index("-->", i)
            _add_block(session, lines[i + 1 : end])
            i = end
        elif FENCE.match(line):
            end = lines.index("```", i + 1)
            if skip_next is None:
                _add_block(session, lines[i + 1 : end])
            else:
                session.not_run.append(skip_next)
            skip_next = None
            i = end
        i += 1
    return session


def documents(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if "```console" in p.read_text()]
