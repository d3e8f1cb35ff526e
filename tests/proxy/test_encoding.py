"""Decoding compressed request bodies, only to read `model`."""

from __future__ import annotations

import gzip
import zlib

import pytest
from backports.zstd import compress as zstd_compress

from weir.proxy.encoding import decode_body
from weir.proxy.errors import ProxyError

BODY = b'{"model": "chat", "messages": [{"role": "user", "content": "hello"}]}'


@pytest.mark.parametrize(("encoding", "encoded"), [
    ("gzip", gzip.compress(BODY)),
    ("x-gzip", gzip.compress(BODY)),
    ("deflate", zlib.compress(BODY)),
    ("zstd", zstd_compress(BODY)),
    ("identity", BODY),
    ("GZIP", gzip.compress(BODY)),
])
def test_supported_encoding_is_decoded(encoding: str, encoded: bytes) -> None:
    assert decode_body(encoded, encoding, 1 << 20) == BODY


def test_raw_deflate_is_decoded() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = compressor.compress(BODY) + compressor.flush()

    assert decode_body(raw, "deflate", 1 << 20) == BODY


def test_stacked_encodings_are_undone_in_reverse() -> None:
    assert decode_body(zstd_compress(gzip.compress(BODY)), "gzip, zstd", 1 << 20) == BODY


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_expanding_past_limit_is_rejected_413(encoding: str) -> None:
    bomb = b'{"model": "chat", "pad": "' + b"a" * 2_000_000 + b'"}'
    encoded = gzip.compress(bomb) if encoding == "gzip" else zstd_compress(bomb)

    with pytest.raises(ProxyError) as raised:
        decode_body(encoded, encoding, 100_000)

    assert raised.value.status == 413


def test_unknown_encoding_is_rejected_415() -> None:
    with pytest.raises(ProxyError) as raised:
        decode_body(BODY, "br", 1 << 20)

    assert raised.value.status == 415
    assert "'br'" in raised.value.message


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_corrupt_body_is_rejected_400(encoding: str) -> None:
    with pytest.raises(ProxyError) as raised:
        decode_body(b"certainly not compressed", encoding, 1 << 20)

    assert raised.value.status == 400
    assert encoding in raised.value.message
