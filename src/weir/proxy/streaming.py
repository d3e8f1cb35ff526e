"""Relaying an upstream response to the client: whole when its length is known, else chunk by chunk.

A response with a Content-Length and no event stream is read whole and sent
with one write. Everything else (SSE, chunked bodies) is streamed: each read
from the upstream goes to the client before the next read, so nothing is
held back and a slow client slows the upstream read instead of piling bytes
up in memory.
"""

from __future__ import annotations

import logging
from typing import Any

from granian.rsgi import ProtocolClosed

from weir.errors import UpstreamError
from weir.proxy.request_log import ResponseCapture
from weir.proxy.routing import DROPPED_RESPONSE_HEADERS
from weir.proxy.upstream import UpstreamResponse

logger = logging.getLogger(__name__)


def response_headers(response: UpstreamResponse, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the upstream's headers minus hop-by-hop ones, plus Weir's own."""
    headers = [(name, value) for name, value in response.headers if name.lower() not in DROPPED_RESPONSE_HEADERS]
    headers.extend(extra)
    return headers


def is_streamed(response: UpstreamResponse) -> bool:
    return response.content_length is None or response.content_type.startswith("text/event-stream")


async def relay(protocol: Any, response: UpstreamResponse, headers: list[tuple[str, str]],
                capture: ResponseCapture | None = None) -> bool:
    """Send `response` to the client; return False when the client went away first.

    With a `capture`, the bytes sent are also kept there, by reference, for the request log.
    """
    if not is_streamed(response):
        body = await response.read()
        response.release()
        protocol.response_bytes(response.status, headers, body)
        if capture is not None:
            capture.keep(body)
        return True

    transport = protocol.response_stream(response.status, headers)
    if capture is not None:
        capture.streamed = True
    try:
        async for chunk in response.chunks():
            if capture is not None:
                capture.keep(chunk)
            await transport.send_bytes(chunk)
    except ProtocolClosed:
        # The client disconnected: drop the upstream connection so the
        # provider stops generating (and billing) tokens nobody will read.
        response.close()
        return False
    except UpstreamError:
        response.close()
        raise
    response.release()
    return True
