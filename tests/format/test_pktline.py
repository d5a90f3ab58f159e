from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from git_cvfs.format.pktline import (
    MAX_PAYLOAD,
    ProtocolError,
    encode_packet,
    read_packet,
    read_text_list,
    write_content,
    write_flush,
    write_text,
)


def test_encode_text_packet_byte_exact() -> None:
    out = io.BytesIO()
    write_text(out.write, "version=2")
    write_flush(out.write)
    assert out.getvalue() == b"000eversion=2\n0000"


def test_read_text_list_strips_newlines() -> None:
    data = io.BytesIO(b"000eversion=2\n000acap=a\n0000")
    assert read_text_list(data.read) == ["version=2", "cap=a"]


def test_content_is_split_into_maximal_packets() -> None:
    out = io.BytesIO()
    payload = b"x" * (MAX_PAYLOAD * 2 + 10)
    write_content(out.write, [payload])
    src = io.BytesIO(out.getvalue() + b"0000")
    sizes = []
    while (pkt := read_packet(src.read)) is not None:
        sizes.append(len(pkt))
    assert sizes == [MAX_PAYLOAD, MAX_PAYLOAD, 10]


def test_oversized_payload_is_refused_both_ways() -> None:
    with pytest.raises(ProtocolError):
        encode_packet(b"x" * (MAX_PAYLOAD + 1))
    with pytest.raises(ProtocolError):
        read_packet(io.BytesIO(b"fff5" + b"x" * 70000).read)


# int(x, 16) alone would take a sign, spaces, an underscore or a 0x prefix: each followed by
# enough payload that only the header check can refuse it.
@pytest.mark.parametrize(
    "header", [b"zzzz", b"0001", b"0003", b"+004", b"-004", b" 004", b"004 ", b"0x10", b"0X10", b"0_10", b"00"]
)
def test_bad_headers_raise_protocol_error(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        read_packet(io.BytesIO(header + b"p" * 16).read)


@pytest.mark.parametrize("header", [b"0014", b"00A4", b"00a4"])
def test_hex_headers_in_either_case_are_read(header: bytes) -> None:
    length = int(header, 16)
    assert read_packet(io.BytesIO(header + b"p" * (length - 4)).read) == b"p" * (length - 4)


def test_truncated_payload_raises() -> None:
    with pytest.raises(ProtocolError):
        read_packet(io.BytesIO(b"0010abc").read)


def test_clean_eof_raises_eoferror() -> None:
    with pytest.raises(EOFError):
        read_packet(io.BytesIO(b"").read)


class _Trickle(io.RawIOBase):
    """Returns one byte per read: the reader must reassemble."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._data.read(1 if n != 0 else 0)


def test_reads_reassemble_short_reads() -> None:
    src = _Trickle(encode_packet(b"hello") + b"0000")
    assert read_packet(src.read) == b"hello"
    assert read_packet(src.read) is None


def test_a_header_seen_before_reads_the_same_whole_or_in_pieces_and_0004_is_an_empty_packet() -> None:
    stream = (encode_packet(b"abc") + b"0004" + b"0000") * 2
    for read in (io.BytesIO(stream).read, _Trickle(stream).read):
        for _ in range(2):
            assert read_packet(read) == b"abc"
            assert read_packet(read) == b""  # an empty packet, not a flush
            assert read_packet(read) is None
    lines = io.BytesIO(encode_packet(b"ab\n") + b"0004" + encode_packet(b"cd\n") + b"0000")
    assert read_text_list(lines.read) == ["ab", "", "cd"]


@pytest.mark.parametrize("bad", [b"+007", b"0x07", b" 007", b"0003", b"fff5"])
def test_a_bad_header_is_refused_even_after_good_ones(bad: bytes) -> None:
    good = encode_packet(b"abc")
    src = io.BytesIO(good + good + bad + b"abc")
    assert read_packet(src.read) == b"abc" and read_packet(src.read) == b"abc"
    with pytest.raises(ProtocolError):
        read_packet(src.read)
    with pytest.raises(ProtocolError):
        read_text_list(io.BytesIO(good + bad + b"abc").read)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_reader_only_raises_protocol_errors(data: bytes) -> None:
    src = io.BytesIO(data)
    try:
        while True:
            read_packet(src.read)
    except (ProtocolError, EOFError):
        pass
