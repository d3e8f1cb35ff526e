"""Decoding a compressed request body, only so that the gateway can read `model`.

The body still goes upstream as the client compressed it. Decoding stops at
the gateway's body limit, so a small compressed body cannot expand into an
unbounded one (a "zip bomb"): past the limit the client gets 413.
"""

from __future__ import annotations

import zlib

from backports.zstd import ZstdDecompressor, ZstdError

from weir.proxy import errors

IDENTITY = "identity"


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo each coding listed in `content_encoding` (gzip, x-gzip, deflate, zstd), last applied first."""
    codings = [coding.strip().lower() for coding in content_encoding.split(",")]
    for coding in reversed(codings):
        if coding in ("", IDENTITY):
            continue
        body = _decode(body, coding, limit)
    return body


def _decode(body: bytes, coding: str, limit: int) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, zlib.MAX_WBITS | 16, coding, limit)
    if coding == "deflate":
        # HTTP's deflate is the zlib format, but some clients send raw deflate.
        try:
            return _inflate(body, zlib.MAX_WBITS, coding, limit)
        except errors.ProxyError as error:
            if error.status == 413:
                raise
            return _inflate(body, -zlib.MAX_WBITS, coding, limit)
    if coding == "zstd":
        decompressor = ZstdDecompressor()
        try:
            decoded = decompressor.decompress(body, max_length=limit + 1)
        except ZstdError:
            raise errors.invalid_encoding(coding) from None
        return _complete(decoded, decompressor.eof, coding, limit)
    raise errors.unsupported_encoding(coding)


def _inflate(body: bytes, window_bits: int, coding: str, limit: int) -> bytes:
    decompressor = zlib.decompressobj(window_bits)
    try:
        decoded = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise errors.invalid_encoding(coding) from None
    return _complete(decoded, decompressor.eof, coding, limit)


def _complete(decoded: bytes, at_end: bool, coding: str, limit: int) -> bytes:
    # Output stops at limit + 1 bytes, so a longer output means the body is
    # too large. A shorter one without the stream's end marker is truncated.
    if len(decoded) > limit:
        raise errors.body_too_large(limit)
    if not at_end:
        raise errors.invalid_encoding(coding)
    return decoded
