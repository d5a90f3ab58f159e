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


def _read_rest(read: Reader, data: bytes, n: int) -> bytes:
    """`data` (a short read) completed to `n` bytes."""
    parts = [data]
    got = len(data)
    while got < n:
        chunk = read(n - got)
        if not chunk:
            raise ProtocolError(f"unexpected end of stream: wanted {n} bytes, got {got}")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# header -> payload length, for every header seen so far (flush: -1; 0004 is an empty packet).
# A checkout's requests repeat the same few headers thousands of times: each is checked once.
_LENGTHS: dict[bytes, int] = {FLUSH: -1}


def _payload_length(read: Reader, header: bytes) -> int:
    """The payload length a header announces (-1: flush); EOFError at a clean end of stream."""
    if len(header) != 4:
        if not header:
            raise EOFError
        header = _read_rest(read, header, 4)
        if (known := _LENGTHS.get(header)) is not None:
            return known
    try:
        length = int(header, 16)
    except ValueError:
        raise ProtocolError(f"bad pkt-line header {header!r}") from None
    # int() also takes a sign, spaces, underscores and a 0x prefix: git writes none of them.
    if not header.isalnum() or header[1] in b"xX":
        raise ProtocolError(f"bad pkt-line header {header!r}")
    if length < 4 or length - 4 > MAX_PAYLOAD:  # 0000 is in _LENGTHS already
        raise ProtocolError(f"bad pkt-line length {length}")
    _LENGTHS[header] = length - 4
    return length - 4


def read_packet(read: Reader) -> bytes | None:
    """One packet's payload, or None for a flush packet. Raises EOFError at a clean end of stream.

    A smudge request in a checkout is nine packets (six headers, a flush, the content, a
    flush), so the common case (a header seen before, the whole payload in one read) makes
    no other call.
    """
    header = read(4)
    length = _LENGTHS.get(header)
    if length is None:
        length = _payload_length(read, header)
    if length < 0:
        return None
    payload = read(length)
    if len(payload) != length:
        payload = _read_rest(read, payload, length)
    return payload


def read_text_list(read: Reader) -> list[str]:
    """Text packets up to the next flush, each without its trailing newline."""
    lines: list[str] = []
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
