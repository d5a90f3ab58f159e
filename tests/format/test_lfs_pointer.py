"""Git LFS pointers, strictly: anything else is content."""

from __future__ import annotations

from git_cvfs.format.lfs_pointer import parse_lfs_pointer

HEX = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
GOOD = f"version https://git-lfs.github.com/spec/v1\noid sha256:{HEX}\nsize 12345\n".encode()


def test_a_pointer_names_its_object() -> None:
    ref = parse_lfs_pointer(GOOD)
    assert ref is not None and ref.hex == HEX and ref.size == 12345
    ext = GOOD.replace(b"oid", b"ext-0-foo sha256:" + HEX.encode() + b"\noid")
    assert parse_lfs_pointer(ext) is not None


def test_anything_else_is_not_a_pointer() -> None:
    for bad in [
        GOOD.rstrip(b"\n"),  # last line not ended
        GOOD.replace(b"size 12345", b"size -1"),
        GOOD.replace(b"size 12345", b"size 012"),
        GOOD.replace(HEX.encode(), HEX.upper().encode()),
        GOOD.replace(b"sha256:", b"sha1:"),
        GOOD.replace(b"v1", b"v2"),
        b"oid sha256:" + HEX.encode() + b"\nversion https://git-lfs.github.com/spec/v1\nsize 1\n",
        GOOD.replace(b"oid sha256:" + HEX.encode() + b"\nsize 12345", b"size 12345\noid sha256:" + HEX.encode()),
        GOOD + b"size 1\n",
        GOOD + b"x" * 1024,
        b"",
    ]:
        assert parse_lfs_pointer(bad) is None, bad
