from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from git_cvfs.errors import RefError
from git_cvfs.format.ref import (
    MAX_REF_BYTES,
    MAX_SIZE,
    Ref,
    _decode_claimed,
    claims_to_be_ref,
    parse_oid,
    parse_ref,
    validate_hex,
)

HEX = "ab" * 32
CANONICAL = b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":123}\n'


def test_encode_is_byte_exact() -> None:
    assert Ref(HEX, 123).encode() == CANONICAL
    assert Ref(HEX, 0).encode() == b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":0}\n'


def test_round_trip() -> None:
    assert parse_ref(CANONICAL) == Ref(HEX, 123)
    assert parse_ref(CANONICAL).oid == "sha256:" + HEX  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "variant",
    [
        b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":123}',  # no newline
        b'{ "cvfs": 1, "oid": "sha256:' + HEX.encode() + b'", "size": 123 }\n',  # spaces
        b'{"cvfs":1,"size":123,"oid":"sha256:' + HEX.encode() + b'"}\n',  # key order
    ],
)
def test_valid_non_canonical_variants_parse_to_the_same_ref(variant: bytes) -> None:
    ref = parse_ref(variant)
    assert ref == Ref(HEX, 123)
    assert ref.encode() == CANONICAL  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world\n",
        b"\x00\x01\x02",
        b'{"name": "not a ref"}',
        b'["cvfs", 1]',
        b'{"oid":"sha256:' + HEX.encode() + b'","cvfs":1,"size":1}',  # cvfs not first: not a claim
        b" " * 2000,
        CANONICAL + b" " * 1024,  # longer than 1024 bytes: ordinary content
    ],
)
def test_ordinary_content_is_not_a_ref(data: bytes) -> None:
    assert parse_ref(data) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"cvfs":2,"oid":"sha256:' + HEX.encode() + b'","size":1}\n', "newer git-cvfs"),
        (b'{"cvfs":0,"oid":"sha256:' + HEX.encode() + b'","size":1}\n', "unknown format version"),
        (b'{"cvfs":"1","oid":"sha256:' + HEX.encode() + b'","size":1}\n', "non-integer"),
        (b'{"cvfs":true,"oid":"sha256:' + HEX.encode() + b'","size":1}\n', "non-integer"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.upper().encode() + b'","size":1}\n', "invalid"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX[:-1].encode() + b'","size":1}\n', "invalid"),
        (b'{"cvfs":1,"oid":"md5:' + HEX.encode() + b'","size":1}\n', "invalid oid"),
        (b'{"cvfs":1,"oid":"sha256:../../etc/passwd","size":1}\n', "invalid"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":-1}\n', "invalid size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":1.0}\n', "invalid size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":"1"}\n', "invalid size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":true}\n', "invalid size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":99999999999999999999999}\n', "invalid size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":NaN}\n', "not valid JSON"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'"}\n', "lacks size"),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":1,"x":2}\n', "unexpected keys"),
        (
            b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","oid":"sha256:' + HEX.encode() + b'","size":1}',
            "not valid JSON",
        ),
        (b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":1}\n{"more":1}', "not valid JSON"),
        (b'{"cvfs":1, "oid": "\xff\xfe"}', "UTF-8"),
        (b'{"cvfs":1,' + b"[" * 500 + b"]" * 500 + b"}", "not valid JSON"),
    ],
)
def test_claimed_but_invalid_refs_raise_a_clear_error(data: bytes, message: str) -> None:
    assert claims_to_be_ref(data)
    with pytest.raises(RefError) as info:
        parse_ref(data)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_future_version_error_has_a_hint() -> None:
    with pytest.raises(RefError) as info:
        parse_ref(b'{"cvfs":7,"oid":"sha256:' + HEX.encode() + b'","size":1}\n')
    assert info.value.hint and "upgrade" in info.value.hint


def test_error_messages_are_bounded_for_huge_values() -> None:
    data = b'{"cvfs":1,"oid":"sha256:' + b"a" * 900 + b'","size":1}'
    with pytest.raises(RefError) as info:
        parse_ref(data)
    assert len(info.value.message) < 200


@pytest.mark.parametrize("bad", ["", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, 5, None])
def test_validate_hex_refuses_anything_but_64_lowercase_hex(bad: object) -> None:
    with pytest.raises(RefError):
        validate_hex(bad)  # type: ignore[arg-type]


def test_parse_oid() -> None:
    assert parse_oid("sha256:" + HEX) == HEX
    with pytest.raises(RefError):
        parse_oid(HEX)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=1100))
def test_fuzz_parse_ref_never_crashes(data: bytes) -> None:
    try:
        ref = parse_ref(data)
    except RefError as exc:
        assert exc.message
        return
    if ref is not None:
        assert len(ref.hex) == 64 and ref.size >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["cvfs", "oid", "size", "x"]),
        st.one_of(st.integers(), st.text(max_size=70), st.booleans(), st.none(), st.floats(allow_nan=False)),
    )
)
def test_fuzz_json_shaped_claims(obj: dict[str, object]) -> None:
    data = json.dumps({"cvfs": obj.pop("cvfs", 1), **obj}).encode()
    try:
        ref = parse_ref(data)
    except RefError:
        return
    if len(data) > MAX_REF_BYTES:  # too long to be a ref: ordinary content, whatever it says
        assert ref is None
        return
    assert ref is not None and ref.encode() == Ref(ref.hex, ref.size).encode()


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), st.integers(min_value=0, max_value=2**63 - 1))
def test_encode_parse_round_trip_property(hex_digest: str, size: int) -> None:
    ref = Ref(hex_digest, size)
    assert parse_ref(ref.encode()) == ref


def _outcome(parse: Callable[[bytes], Ref | None], data: bytes) -> Ref | str | None:
    try:
        return parse(data)
    except RefError as exc:
        return exc.message


@pytest.mark.parametrize(
    "size", [b"0", b"7", str(MAX_SIZE).encode(), str(MAX_SIZE + 1).encode(), b"9" * 19, b"01", b"00"]
)
def test_the_shortcut_for_canonical_refs_agrees_with_the_full_parse(size: bytes) -> None:
    data = b'{"cvfs":1,"oid":"sha256:' + HEX.encode() + b'","size":' + size + b"}\n"
    assert _outcome(parse_ref, data) == _outcome(_decode_claimed, data)


@given(
    st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65),
    st.integers(min_value=0, max_value=2**64),
    st.sampled_from(["", "0"]),
)
def test_canonical_looking_refs_parse_as_the_full_parser_says(hex_digest: str, size: int, pad: str) -> None:
    data = b'{"cvfs":1,"oid":"sha256:%s","size":%s%d}\n' % (hex_digest.encode(), pad.encode(), size)
    assert _outcome(parse_ref, data) == _outcome(_decode_claimed, data)
