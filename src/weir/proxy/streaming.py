"""Relaying an upstream response to the client: whole when its length is known, else chunk by chunk.

A response with a Content-Length and no event stream is read whole and sent
with one write. Everything else (SSE, chunked bodies) is streamed: each read
from the upstream goes to the client before the next read, so nothing is
held back and a slow client slows the upstream read instead of piling bytes
up in memory. Bytes pass through untouched, so SSE comments, `event:` fields
and events split across reads reach the client as the upstream wrote them.

A stream that the upstream breaks midway never ends like a complete one.
By default `BrokenStreamEnding` closes the client connection without the
final chunk. With the setting `sse-error`, an event stream gets an SSE
`error` event in OpenAI's error shape instead, and no `[DONE]`.
"""

from __future__ import annotations

import logging
from typing import Any

from granian.rsgi import ProtocolClosed  # type: ignore[attr-defined]  # re-exported at run time, not in its stubs

from weir.errors import UpstreamError, UpstreamTimeout
from weir.proxy.connection import abort_connection
from weir.proxy import errors
from weir.proxy.request_log import ResponseCapture
from weir.proxy.routing import DROPPED_RESPONSE_HEADERS
from weir.proxy.upstream import UpstreamResponse

logger = logging.getLogger(__name__)

COMPLETED = "completed"
CLIENT_GONE = "client_gone"
BROKEN = "broken"
IDLE_TIMEOUT = "idle_timeout"


def response_headers(response: UpstreamResponse, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the upstream's headers minus hop-by-hop ones, plus Weir's own."""
    headers = [(name, value) for name, value in response.headers if name.lower() not in DROPPED_RESPONSE_HEADERS]
    headers.extend(extra)
    return headers


def is_streamed(response: UpstreamResponse) -> bool:
    return response.content_length is None or response.content_type.startswith("text/event-stream")


class BrokenStreamEnding:
    """The ending of a stream that the upstream broke midway, chosen once per worker."""

    def __init__(self, mode: str) -> None:
        self.sse_error = mode == "sse-error"

    async def end(self, scope: Any, transport: Any, response: UpstreamResponse, last_chunk: bytes,
                  alias: str) -> None:
        if self.sse_error and response.content_type.startswith("text/event-stream") and _ends_event(last_chunk):
            error = errors.upstream_stream_broken(alias)
            await transport.send_bytes(b"event: error\ndata: " + error.body() + b"\n\n")
            return
        await abort_connection(scope.client, scope.server)


async def relay(scope: Any, protocol: Any, response: UpstreamResponse, headers: list[tuple[str, str]],
                ending: BrokenStreamEnding, alias: str, capture: ResponseCapture | None = None) -> str:
    """Send `response` to the client; return COMPLETED, CLIENT_GONE, BROKEN or IDLE_TIMEOUT.

    An upstream failure before the first byte reaches the client raises
    `UpstreamError`, so the caller can still respond with a status of its own.
    With a `capture`, the bytes sent are also kept there, by reference, for the request log.
    """
    if capture is not None:
        capture.encoding = next((value for name, value in response.headers if name.lower() == "content-encoding"),
                                None)
    if not is_streamed(response):
        try:
            body = await response.read()
        except BaseException:
            response.close()
            raise
        response.release()
        protocol.response_bytes(response.status, headers, body)
        if capture is not None:
            capture.keep(body)
        return COMPLETED

    transport = protocol.response_stream(response.status, headers)
    if capture is not None:
        capture.streamed = True
    last_chunk = b"\n\n"
    try:
        async for chunk in response.chunks():
            if capture is not None:
                capture.keep(chunk)
            await transport.send_bytes(chunk)
            last_chunk = chunk
    except ProtocolClosed:
        # The client disconnected: drop the upstream connection so the
        # provider stops generating (and billing) tokens that no client will read.
        response.close()
        return CLIENT_GONE
    except UpstreamError as failure:
        response.close()
        logger.warning("The upstream stream for alias %s broke after it started: %s", alias, failure)
        await ending.end(scope, transport, response, last_chunk, alias)
        return IDLE_TIMEOUT if isinstance(failure, UpstreamTimeout) else BROKEN
    except BaseException:
        response.close()  # cancelled because the client went away: free the upstream connection now
        raise
    response.release()
    return COMPLETED


def _ends_event(chunk: bytes) -> bool:
    # An SSE event is only complete after a blank line. The client's parser
    # would merge an error event sent after half an event into that event.
    return chunk.endswith(b"\n\n") or chunk.endswith(b"\r\n\r\n")
