from __future__ import annotations

import pytest

from git_cvfs.output import redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('Could not connect to the endpoint URL: "http://ada:pw1@127.0.0.1:9/b/k"', "pw1"),
        ("s3://key:secret2@bucket/prefix", "secret2"),
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy/K1+==;EndpointSuffix=x", "Zm9vYmFy/K1+=="),
        ("BlobEndpoint=https://a.blob;SharedAccessSignature=sv=2020&sig=c2ln", "c2ln"),
        ("GET https://a.blob.core.windows.net/c/k?sv=2022&se=2026&sig=abc%2Bdef&sp=r", "abc%2Bdef"),
    ],
)
def test_credentials_inside_text_are_replaced(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "***" in out


def test_ordinary_text_is_left_alone() -> None:
    for text in ("minSize = 1MB", "mail ada@example.com", "oid sha256:ab size=12", "file:///srv/archive"):
        assert redact(text) == text
