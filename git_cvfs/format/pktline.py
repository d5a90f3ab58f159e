"""pkt-line framing as git's long-running filter protocol uses it.

Written against `read(n)` / `write(b)` callables so tests can drive it with BytesIO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from git_cvfs.errors import CvfsError

MAX_PAYLOAD = 65516
FLUSH = b"0000"

Reader = Callable[[int], bytes]
Writer = Callable[[bytes | memoryview], object]


class ProtocolError(CvfsError):
    pass


def _read_exact(read: Reader, n: int) -> bytes:
    data = read(n)
    if len(data) == n:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        chunk = read(n - got)
        if not chunk:
            raise ProtocolError(f"unexpected end of stream: wanted {n} bytes, got {got}")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_packet(read: Reader) -> bytes | None:
    """One packet's payload, or None for a flush packet. Raises EOFError at a clean end of stream."""
    header = read(4)
    if not header:
        raise EOFError
    if len(header) < 4:
        header += _read_exact(read, 4 - len(header))
    try:
        length = int(header, 16)
    except ValueError:
        raise ProtocolError(f"bad pkt-line header {header!r}") from None
    if header[:1] in (b"+", b"-") or header != header.strip():
        raise ProtocolError(f"bad pkt-line header {header!r}")
    if length == 0:
        return None
    if length < 4 or length - 4 > MAX_PAYLOAD:
        raise ProtocolError(f"bad pkt-line length {length}")
    return _read_exact(read, length - 4)


def read_text_list(read: Reader) -> list[str]:
    """Text packets up to the next flush, each without its trailing newline."""
    lines = []
    while (payload := read_packet(read)) is not None:
        lines.append(payload.decode("utf-8", "surrogateescape").removesuffix("\n"))
    return lines


def encode_packet(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"pkt-line payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return b"%04x" % (len(payload) + 4) + payload


def write_text(write: Writer, line: str) -> None:
    write(encode_packet(line.encode("utf-8", "surrogateescape") + b"\n"))


def write_flush(write: Writer) -> None:
    write(FLUSH)


def write_content(write: Writer, chunks: Iterator[bytes] | list[bytes]) -> None:
    """Frame arbitrary-sized chunks into maximal packets (no flush)."""
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), MAX_PAYLOAD):
            piece = view[start : start + MAX_PAYLOAD]
            write(b"%04x" % (len(piece) + 4))
            write(piece)
