"""The record the request path hands to the request-log writer, and its conversion into a row.

On the request path, `RequestRecord` only copies references: the raw request
bytes, the response chunks as relayed, timings and a few names. Decoding
bodies and reading token usage happen later, in `to_row`, which only the
writer calls.

Body logging is decided once per request by `body_logging`:

- `full`: the record keeps the request body, the response body and, for a
  stream, the text assembled from its deltas;
- `metadata`: the record keeps everything but the bodies (token usage is
  still read from the response before it is discarded);
- `none`: no record at all; the writer counts the request as skipped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from weir.proxy.encoding import decode_body
from weir.proxy.errors import ProxyError
from weir.proxy.usage import parse_response
from weir.storage.request_logs import RequestLogRow

if TYPE_CHECKING:
    from weir.proxy.app import Exchange

BODY_LOGGING_MODES = ("none", "metadata", "full")  # from the strictest to the most complete
MAX_DECODED_RESPONSE_BYTES = 64 * 1024 * 1024  # a compressed response that inflates past this keeps its raw bytes


def body_logging(default: str, key_mode: str | None, alias_mode: str | None) -> str:
    """Return the body logging of one request.

    A key's or an alias's own setting replaces the `[logging] bodies` default.
    When both have one, the stricter wins, so that a key cannot turn body
    logging back on for an alias declared sensitive (and the reverse).
    """
    if key_mode is None and alias_mode is None:
        return default
    if key_mode is None or alias_mode is None:
        return key_mode or alias_mode or default
    return min(key_mode, alias_mode, key=BODY_LOGGING_MODES.index)


class ResponseCapture:
    """The response bytes as they were relayed, kept by reference for the request log."""

    __slots__ = ("chunks", "size", "first_chunk_at", "streamed", "encoding")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.encoding: str | None = None
        """The upstream's Content-Encoding: the bytes are kept as relayed and decoded by the writer."""
        self.first_chunk_at = 0.0
        self.streamed = False

    def keep(self, chunk: bytes) -> None:
        if not self.chunks:
            self.first_chunk_at = time.perf_counter()
        self.chunks.append(chunk)
        self.size += len(chunk)


class RequestRecord:
    """One finished request as the request path saw it: raw bytes, timings (perf_counter seconds), names."""

    __slots__ = ("exchange", "method", "path", "client", "user_agent", "finished_at", "size")

    def __init__(self, exchange: Exchange, scope: Any) -> None:
        self.exchange = exchange
        self.method: str = scope.method
        self.path: str = scope.path
        self.client: str | None = scope.client
        self.user_agent: str | None = scope.headers.get("user-agent")
        self.finished_at = time.perf_counter()
        capture = exchange.capture
        self.size = len(exchange.request_body or b"") + (capture.size if capture is not None else 0)
        """Bytes of body this record keeps in memory until it is written."""


def to_row(record: RequestRecord) -> RequestLogRow:
    """Build the row of one record: read usage from the response, keep bodies only in `full` mode."""
    exchange = record.exchange
    capture = exchange.capture
    response = b"".join(capture.chunks) if capture is not None else b""
    if capture is not None and capture.encoding and response:
        response = _decoded(response, capture.encoding)
    streamed = capture is not None and capture.streamed
    parsed = parse_response(response, streamed) if response else None
    usage = parsed.usage if parsed is not None else None
    full = exchange.bodies == "full"
    key = exchange.key

    total_ms, ttfb_ms, overhead_ms = _timings(record)
    return RequestLogRow(
        request_id=exchange.request_id, created_at=exchange.created_at, method=record.method, path=record.path,
        status=exchange.status, error=exchange.error,
        virtual_key_id=key.id if key is not None else None, key_prefix=exchange.key_prefix,
        user_id=key.user_id if key is not None else None, user_name=key.user_name if key is not None else None,
        alias=exchange.alias, deployment=exchange.deployment, provider=exchange.provider,
        stream=streamed, cancelled=exchange.cancelled, attempts=len(exchange.attempts),
        total_ms=total_ms, ttfb_ms=ttfb_ms, overhead_ms=overhead_ms,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None, cached_tokens=usage.cached_tokens if usage else None,
        reasoning_tokens=usage.reasoning_tokens if usage else None,
        client_ip=_client_ip(record.client), user_agent=record.user_agent, bodies=exchange.bodies,
        request_body=_text(exchange.request_body) if full else None,
        response_body=_text(response) if full and response else None,
        response_text=parsed.text if full and parsed is not None else None,
    )


def _timings(record: RequestRecord) -> tuple[float, float | None, float | None]:
    """Return total, time to first upstream byte, and Weir's own share, in milliseconds.

    The first byte is the first body chunk of a stream, or the status line of
    a plain response, timed from the first attempt's send (retries included).
    Weir's share is the total minus the time from that send to the end of the
    relay, so it covers reading the request, the steps before forwarding and
    the work after the relay.
    """
    exchange = record.exchange
    total = record.finished_at - exchange.started
    if not exchange.upstream_started:
        return total * 1000, None, total * 1000
    capture = exchange.capture
    first_byte = capture.first_chunk_at if capture is not None and capture.streamed else exchange.headers_at
    ttfb = (first_byte - exchange.upstream_started) * 1000 if first_byte else None
    upstream = (exchange.upstream_finished or record.finished_at) - exchange.upstream_started
    return total * 1000, ttfb, max(total - upstream, 0.0) * 1000


def _client_ip(client: str | None) -> str | None:
    if not client:
        return None
    host, separator, port = client.rpartition(":")
    return host.strip("[]") if separator and port.isdigit() else client


def _text(body: bytes | None) -> str | None:
    # Postgres text cannot hold NUL, and a body need not be valid UTF-8.
    if body is None:
        return None
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _decoded(response: bytes, encoding: str) -> bytes:
    """Undo the upstream's compression so usage and text can be read; keep the bytes when that fails."""
    try:
        return decode_body(response, encoding, MAX_DECODED_RESPONSE_BYTES)
    except ProxyError:
        return response  # an unknown or corrupt coding: the row keeps no usage, and the text as it came
