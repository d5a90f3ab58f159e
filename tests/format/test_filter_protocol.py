from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from git_cvfs.format import filter_protocol as fp
from git_cvfs.format.pktline import ProtocolError, encode_packet, read_packet, read_text_list


def test_handshake_byte_exact() -> None:
    incoming = io.BytesIO(
        encode_packet(b"git-filter-client\n")
        + encode_packet(b"version=2\n")
        + b"0000"
        + encode_packet(b"capability=clean\n")
        + encode_packet(b"capability=smudge\n")
        + encode_packet(b"capability=delay\n")
        + encode_packet(b"capability=future\n")
        + b"0000"
    )
    out = io.BytesIO()
    assert fp.handshake(incoming.read, out.write) == {"clean", "smudge", "delay"}
    assert out.getvalue() == (
        b"0016git-filter-server\n000eversion=2\n0000"
        b"0015capability=clean\n0016capability=smudge\n0015capability=delay\n0000"
    )


def test_handshake_refuses_other_peers_and_versions() -> None:
    with pytest.raises(ProtocolError):
        fp.handshake(io.BytesIO(encode_packet(b"hello\n") + b"0000").read, io.BytesIO().write)
    with pytest.raises(ProtocolError):
        fp.handshake(
            io.BytesIO(encode_packet(b"git-filter-client\n") + encode_packet(b"version=3\n") + b"0000").read,
            io.BytesIO().write,
        )


def test_request_headers() -> None:
    data = (
        encode_packet(b"command=smudge\n")
        + encode_packet(b"pathname=a b/c=d\n")
        + encode_packet(b"can-delay=1\n")
        + b"0000"
    )
    req = fp.read_request(io.BytesIO(data).read)
    assert req is not None and req.command == "smudge" and req.pathname == "a b/c=d" and req.can_delay


def test_content_failing_part_way_ends_with_status_error() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise OSError(5, "Input/output error")

    out = io.BytesIO()
    with pytest.raises(fp.ReplySent):
        fp.reply_content(out.write, chunks())
    src = io.BytesIO(out.getvalue())
    assert read_text_list(src.read) == ["status=success"]
    assert read_packet(src.read) == b"partial"
    assert read_packet(src.read) is None
    assert read_text_list(src.read) == ["status=error"]
    assert src.read() == b""
