"""A purpose-built HTTP/1.1 keep-alive client for upstream calls, on httptools' C parser.

It offers the same interface as the aiohttp client in `weir.proxy.upstream`:
`send` returns a response whose status and headers have arrived, and the body
is read or streamed afterwards. It costs a fraction of aiohttp's CPU per
request because it does only what a proxy needs: write the request head and
body as given, parse the response with llhttp, and keep idle connections per
origin.

What it deliberately does not do: redirects, cookies, decompression, proxies,
HTTP/2, or `Expect: 100-continue`. Bodies are forwarded as bytes.

Reuse of a keep-alive connection that the server has meanwhile closed is the
classic failure of such pools. A request that fails on a reused connection
before a single response byte arrived is sent once more on a new connection,
because the upstream cannot have produced a response for it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httptools

from weir.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout
from weir.proxy.upstream import STREAM_READ_BYTES, UpstreamRequest

PAUSE_READING_BYTES = 256 * 1024  # stop reading from the socket while this much body waits for the client
MAX_IDLE_PER_ORIGIN = 512

Origin = tuple[str, str, int]  # scheme, host, port


class Http1Client:
    """A pool of keep-alive connections, per origin, for one worker's event loop."""

    def __init__(self, max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN) -> None:
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        self._ssl_context = ssl.create_default_context()

    async def send(self, request: UpstreamRequest) -> Http1Response:
        origin, target = self._target(request.url)
        head = _request_head(request, origin, target)

        connection, reused = await self._acquire(origin, request.connect_timeout)
        try:
            await connection.exchange(head, request.body, request.read_timeout, request.idle_timeout)
        except _StaleConnection:
            if not reused:
                raise UpstreamConnectError("The upstream closed the connection before answering.") from None
            connection = await self._connect(origin, request.connect_timeout)
            await self._exchange_once(connection, head, request)
        except BaseException:
            connection.abort()  # a half-finished exchange leaves the connection unusable
            raise
        return Http1Response(connection, self, origin)

    async def _exchange_once(self, connection: _Connection, head: bytes, request: UpstreamRequest) -> None:
        try:
            await connection.exchange(head, request.body, request.read_timeout, request.idle_timeout)
        except BaseException as error:
            connection.abort()
            if isinstance(error, _StaleConnection):
                raise UpstreamConnectError("The upstream closed the connection before answering.") from None
            raise

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()
        self._idle.clear()

    def release(self, origin: Origin, connection: _Connection) -> None:
        """Take back a connection whose response was read to the end."""
        idle = self._idle.setdefault(origin, deque())
        if connection.reusable() and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.abort()

    async def _acquire(self, origin: Origin, connect_timeout: float) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used is the least likely to have been closed
            if connection.reusable():
                return connection, True
            connection.abort()
        return await self._connect(origin, connect_timeout), False

    async def _connect(self, origin: Origin, connect_timeout: float) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(_Connection, host, port,
                                       ssl=self._ssl_context if scheme == "https" else None),
                connect_timeout,
            )
        except asyncio.TimeoutError:
            raise UpstreamTimeout("The upstream did not accept the connection in time.") from None
        except OSError as error:
            raise UpstreamConnectError(f"The upstream could not be reached: {type(error).__name__}.") from None
        return connection

    def _target(self, url: str) -> tuple[Origin, bytes]:
        # Provider URLs repeat, so their parse is kept; the cache is bounded
        # by the number of distinct paths and query strings clients send.
        cached = self._targets.get(url)
        if cached is None:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            cached = ((parts.scheme, parts.hostname or "", port), target.encode("latin-1"))
            if len(self._targets) < 4096:
                self._targets[url] = cached
        return cached


class Http1Response:
    """An upstream response whose status and headers have arrived."""

    def __init__(self, connection: _Connection, client: Http1Client, origin: Origin) -> None:
        self._connection = connection
        self._client = client
        self._origin = origin
        self.status = connection.status
        self.headers = connection.headers
        self.content_type = connection.content_type
        self.content_length = connection.content_length

    async def read(self) -> bytes:
        return await self._connection.read_all()

    def chunks(self) -> AsyncIterator[bytes]:
        """Yield body bytes as they arrive, at most `STREAM_READ_BYTES` at a time."""
        return self._connection.body(STREAM_READ_BYTES)

    def close(self) -> None:
        """Drop the connection: used when the client went away or the stream broke."""
        self._connection.abort()

    def release(self) -> None:
        """Return the connection to the pool; only valid after the whole body was read."""
        self._client.release(self._origin, self._connection)


class _StaleConnection(Exception):
    """The connection closed before any response byte: the request may be sent again."""


class _Connection(asyncio.Protocol):
    """One upstream TCP (or TLS) connection carrying one exchange at a time."""

    _parser: Any
    _buffered: int
    _received_any: bool
    _headers_complete: bool
    _message_complete: bool
    _keep_alive: bool
    _read_timeout: float
    status: int
    headers: list[tuple[str, str]]
    content_type: str
    content_length: int | None

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._buffer: deque[bytes] = deque()
        self._paused = False
        self._closed = False
        self._error: Exception | None = None
        self._start_exchange()

    # Exchanges.

    async def exchange(self, head: bytes, body: bytes, read_timeout: float, idle_timeout: float | None) -> None:
        """Send one request and wait, up to `read_timeout` seconds, for the response head."""
        self._reset()
        assert self._transport is not None
        self._transport.write(head + body if len(body) < 16384 else head)
        if len(body) >= 16384:
            self._transport.write(body)

        while not self._headers_complete:
            await self._wait(read_timeout, "The upstream did not respond in time.")
        self._read_timeout = idle_timeout or read_timeout  # from now on, the longest pause between reads

    async def body(self, read_bytes: int) -> AsyncIterator[bytes]:
        while True:
            if self._buffer:
                chunk = self._take(read_bytes)
                yield chunk
                continue
            if self._message_complete:
                return
            await self._wait(0.0, "The upstream stopped sending its response.")

    async def read_all(self) -> bytes:
        """Return the whole body; a short body has usually arrived with the head, so no wait at all."""
        while not self._message_complete:
            self._resume_reading()  # everything is kept anyway, so the read pause would only stall
            await self._wait(0.0, "The upstream stopped sending its response.")
        body = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        return body

    def reusable(self) -> bool:
        return (not self._closed and self._message_complete and self._keep_alive
                and self._transport is not None and not self._transport.is_closing())

    def abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(UpstreamError(f"The upstream sent an invalid HTTP response: {type(error).__name__}."))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._message_complete:
            return
        if self._headers_complete and self.content_length is None and not self._chunked():
            self._message_complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self._received_any:
            self._fail(_StaleConnection())
        else:
            self._fail(UpstreamError("The upstream closed the connection in the middle of its response."))

    def pause_writing(self) -> None:
        pass  # request bodies are bounded by the gateway's body limit and written at once

    def resume_writing(self) -> None:
        pass

    # httptools parser callbacks.

    def on_header(self, name: bytes, value: bytes) -> None:
        header = name.decode("latin-1")
        text = value.decode("latin-1")
        self.headers.append((header, text))
        lowered = header.lower()
        if lowered == "content-length" and text.isdigit():
            self.content_length = int(text)
        elif lowered == "content-type":
            self.content_type = text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._headers_complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._buffer.append(body)
        self._buffered += len(body)
        if self._buffered > PAUSE_READING_BYTES and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # llhttp reports should_keep_alive() correctly only until the message
        # callback returns, and False afterwards, so the value is kept here.
        self._keep_alive = self._parser.should_keep_alive()
        self._message_complete = True
        self._wake()

    # Internals.

    def _reset(self) -> None:
        if self._closed:
            raise _StaleConnection()
        self._start_exchange()

    def _start_exchange(self) -> None:
        """Clear what the previous response left: parser, body buffer and response head."""
        self._parser = httptools.HttpResponseParser(self)
        self._buffer.clear()
        self._buffered = 0
        self._received_any = False
        self._headers_complete = False
        self._message_complete = False
        self._keep_alive = False
        self._read_timeout = 0.0
        self.status = 0
        self.headers = []
        self.content_type = ""
        self.content_length = None

    def _take(self, read_bytes: int) -> bytes:
        # Everything that is waiting goes out in one piece (up to read_bytes):
        # when the client is slower than the upstream, fewer and larger writes
        # cost less than one write per network read, and the bytes are the same.
        buffer = self._buffer
        chunk = buffer.popleft()
        if buffer and len(chunk) < read_bytes:
            parts = [chunk]
            size = len(chunk)
            while buffer and size + len(buffer[0]) <= read_bytes:
                part = buffer.popleft()
                parts.append(part)
                size += len(part)
            chunk = b"".join(parts)
        if len(chunk) > read_bytes:
            buffer.appendleft(chunk[read_bytes:])
            chunk = chunk[:read_bytes]
        self._buffered -= len(chunk)
        if self._buffered <= PAUSE_READING_BYTES // 2:
            self._resume_reading()
        return chunk

    def _resume_reading(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    async def _wait(self, timeout: float, message: str) -> None:
        if self._error is not None:
            raise self._error
        if timeout:
            self._read_timeout = timeout
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._read_timeout, _expire, waiter, message)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _chunked(self) -> bool:
        return any(name.lower() == "transfer-encoding" and "chunked" in value.lower()
                   for name, value in self.headers)


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(message))


def _request_head(request: UpstreamRequest, origin: Origin, target: bytes) -> bytes:
    scheme, host, port = origin
    default_port = 443 if scheme == "https" else 80
    authority = host if port == default_port else f"{host}:{port}"
    lines = [f"{request.method} {target.decode('latin-1')} HTTP/1.1", f"host: {authority}"]
    lines.extend(f"{name}: {value}" for name, value in request.headers)
    lines.append(f"content-length: {len(request.body)}\r\n\r\n")
    head = "\r\n".join(lines)
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError:
        return head.encode("utf-8")  # a header value outside latin-1 can only have arrived as UTF-8
