"""The upstream HTTP client of the proxy, behind one small interface.

`UpstreamClient.send` returns an `UpstreamResponse` once the status line and
headers have arrived; the body is read or streamed afterwards. Two clients
implement the interface: `weir.proxy.http1.Http1Client` (the default, a
purpose-built keep-alive pool on httptools) and `AiohttpClient` here (aiohttp,
one session per worker). Both are built at worker start-up, forward bytes as
received with no decompression and no headers of their own, and turn failures
into `UpstreamConnectError`, `UpstreamTimeout` or `UpstreamError`, so nothing
above this module sees a library's exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from weir.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout

STREAM_READ_BYTES = 64 * 1024  # upper bound of one relayed read, so a slow client cannot make us buffer a whole body


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    connect_timeout: float
    read_timeout: float
    """Seconds allowed from sending the request to the response headers: the first-byte timeout."""
    idle_timeout: float | None = None
    """Seconds allowed between two later reads (None: `read_timeout`); nothing bounds the total duration."""

    def __repr__(self) -> str:
        return f"UpstreamRequest({self.method} {self.url.split('?', 1)[0]})"


class UpstreamResponse(Protocol):
    """An upstream response whose status and headers have arrived."""

    status: int
    headers: list[tuple[str, str]]

    @property
    def content_type(self) -> str: ...

    @property
    def content_length(self) -> int | None: ...

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """Yield body bytes as they arrive, at most `STREAM_READ_BYTES` at a time."""
        ...

    def close(self) -> None:
        """Drop the connection: used when the client went away or the stream broke."""

    def release(self) -> None:
        """Return the connection to the pool; only valid after the whole body was read."""


class UpstreamClient(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def close(self) -> None: ...


def create_upstream_client(kind: str, max_connections: int) -> UpstreamClient:
    """Build the worker's upstream client: `httptools` (the default) or `aiohttp`."""
    if kind == "aiohttp":
        return AiohttpClient(max_connections)
    from weir.proxy.http1 import Http1Client

    return Http1Client()


class AiohttpResponse:
    """An aiohttp response whose status and headers have arrived."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers]

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "")

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise UpstreamTimeout("The upstream stopped sending its response.") from error
        except aiohttp.ClientError as error:
            raise UpstreamError(f"The upstream response broke off: {type(error).__name__}.") from error

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield body bytes as they arrive, at most `STREAM_READ_BYTES` at a time."""
        try:
            while True:
                chunk = await self._response.content.readany()
                if not chunk:
                    return
                for start in range(0, len(chunk), STREAM_READ_BYTES):
                    yield chunk[start:start + STREAM_READ_BYTES]
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise UpstreamTimeout("The upstream stopped sending its stream.") from error
        except aiohttp.ClientError as error:
            raise UpstreamError(f"The upstream stream broke off: {type(error).__name__}.") from error

    def close(self) -> None:
        """Drop the connection: used when the client went away or the stream broke."""
        self._response.close()

    def release(self) -> None:
        """Return the connection to the pool; only valid after the whole body was read."""
        self._response.release()


class AiohttpClient:
    """A pooled keep-alive aiohttp client for one worker."""

    def __init__(self, max_connections: int) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=60,
                                         enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None), cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def send(self, request: UpstreamRequest) -> AiohttpResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=request.connect_timeout,
                                        sock_read=request.read_timeout)
        try:
            response = await self._session.request(
                request.method, request.url, headers=request.headers, data=request.body,
                timeout=timeout, allow_redirects=False, compress=None,
            )
        except aiohttp.ConnectionTimeoutError as error:
            raise UpstreamTimeout("The upstream did not accept the connection in time.") from error
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise UpstreamTimeout("The upstream did not respond in time.") from error
        except aiohttp.ClientError as error:
            raise UpstreamConnectError(f"The upstream could not be reached: {type(error).__name__}.") from error
        _set_idle_timeout(response, request.idle_timeout or request.read_timeout)
        return AiohttpResponse(response)

    async def close(self) -> None:
        await self._session.close()


def _set_idle_timeout(response: aiohttp.ClientResponse, seconds: float) -> None:
    # aiohttp has one read timeout per connection (`sock_read`), restarted on
    # every read. It was the first-byte timeout until the headers came, and
    # from now on it bounds the pause between reads. The timer restarts at
    # once with the new value unless the body is already complete, because
    # aiohttp stops the timer at the end of the body. A timer left running
    # would fail the connection after it went back to the pool.
    connection = response.connection
    if connection is None or connection.protocol is None:
        return
    connection.protocol.read_timeout = seconds
    if not response.content.is_eof():
        connection.protocol.start_timeout()
