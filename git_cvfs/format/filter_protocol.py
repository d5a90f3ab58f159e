"""Handshake, requests and status replies of git's long-running filter protocol (version 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from git_cvfs.format.pktline import (
    FLUSH,
    MAX_PAYLOAD,
    ProtocolError,
    Reader,
    Writer,
    encode_packet,
    read_text_list,
    write_content,
    write_flush,
    write_text,
)

SUPPORTED_CAPABILITIES = ("clean", "smudge", "delay")


class Request(NamedTuple):
    command: str
    pathname: str
    can_delay: bool
    headers: dict[str, str]


def handshake(read: Reader, write: Writer, flush: Callable[[], object] = lambda: None) -> set[str]:
    """Do both halves of the handshake and return the capabilities agreed on.

    `flush` pushes buffered output to git: each half must reach git before we wait for the next.
    """
    welcome = read_text_list(read)
    if not welcome or welcome[0] != "git-filter-client":
        raise ProtocolError(f"expected git-filter-client, got {welcome[:1]!r}")
    if "version=2" not in welcome[1:]:
        raise ProtocolError(f"git offers no protocol version this filter speaks: {welcome[1:]!r}")
    write_text(write, "git-filter-server")
    write_text(write, "version=2")
    write_flush(write)
    flush()
    offered = {line.removeprefix("capability=") for line in read_text_list(read) if line.startswith("capability=")}
    agreed = [cap for cap in SUPPORTED_CAPABILITIES if cap in offered]
    for cap in agreed:
        write_text(write, f"capability={cap}")
    write_flush(write)
    return set(agreed)


def read_request(read: Reader) -> Request | None:
    """The next request's headers, or None when git closes the stream. Its content packets follow, up to a flush."""
    try:
        lines = read_text_list(read)
    except EOFError:
        return None
    headers: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            raise ProtocolError(f"malformed request header {line!r}")
        headers[key] = value
    command = headers.get("command")
    if command is None:
        raise ProtocolError(f"request without a command: {lines!r}")
    return Request(
        command=command,
        pathname=headers.get("pathname", ""),
        can_delay=headers.get("can-delay") == "1",
        headers=headers,
    )


def reply_status(write: Writer, status: str) -> None:
    write_text(write, f"status={status}")
    write_flush(write)


class ReplySent(Exception):
    """Content failed after status=success went out; git has already been told status=error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


_SUCCESS = encode_packet(b"status=success\n") + FLUSH


def reply_content(write: Writer, chunks: Iterator[bytes] | list[bytes]) -> None:
    """status=success, the content, and the empty status list meaning 'still success'.

    If the content fails part way, the protocol's way out is a flush and then
    status=error in place of the empty list; ReplySent tells the caller so.
    """
    if isinstance(chunks, list) and len(chunks) == 1 and 0 < len(chunks[0]) <= MAX_PAYLOAD:
        # A ref (every file a lazy clone leaves): the whole reply in one write.
        write(b"".join((_SUCCESS, b"%04x" % (len(chunks[0]) + 4), chunks[0], FLUSH, FLUSH)))
        return
    write(_SUCCESS)
    try:
        write_content(write, chunks)
    except Exception as exc:
        write_flush(write)
        reply_status(write, "error")
        raise ReplySent(exc) from exc
    write_flush(write)
    write_flush(write)


def reply_available(write: Writer, pathnames: list[str]) -> None:
    for name in pathnames:
        write_text(write, f"pathname={name}")
    write_flush(write)
    reply_status(write, "success")
