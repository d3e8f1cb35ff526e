"""The httptools upstream client against raw servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from weir.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout
from weir.proxy.http1 import Http1Client
from weir.proxy.upstream import UpstreamRequest

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    connections: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions", connections


def request(url: str, body: bytes = b'{"model": "m"}', read_timeout: float = 2.0) -> UpstreamRequest:
    return UpstreamRequest("POST", url, [("content-type", "application/json")], body, 2.0, read_timeout)


async def exchange(client: Http1Client, url: str, **options: float) -> tuple[int, bytes]:
    response = await client.send(request(url, **options))  # type: ignore[arg-type]
    body = await response.read()
    response.release()
    return response.status, body


def test_keep_alive_connection_is_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(ok(b'{"n": 1}'))

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        client = Http1Client()
        results = [await exchange(client, url) for _ in range(5)]
        assert results == [(200, b'{"n": 1}')] * 5
        assert len(connections) == 1
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_stale_keep_alive_connection_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"{}"))  # claims keep-alive, then closes: the pooled connection is stale
        await writer.drain()

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        client = Http1Client()
        assert await exchange(client, url) == (200, b"{}")
        await asyncio.sleep(0.1)
        assert await exchange(client, url) == (200, b"{}")
        assert len(connections) == 2
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_chunked_body_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b"data: a\n\n", b"data: b\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await read_request(reader)
        writer.write(ok(b"second"))

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        client = Http1Client()
        response = await client.send(request(url))
        assert response.content_length is None
        chunks = [chunk async for chunk in response.chunks()]
        response.release()
        assert b"".join(chunks) == b"data: a\n\ndata: b\n\n"
        assert len(chunks) == 2
        assert await exchange(client, url) == (200, b"second")
        assert len(connections) == 1
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_body_until_close_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        assert await exchange(client, url) == (200, b"all of it")
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_early_close_mid_body_raises() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        response = await client.send(request(url))
        with pytest.raises(UpstreamError, match="closed the connection in the middle"):
            await response.read()
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_close_before_answer_raises_connect_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        with pytest.raises(UpstreamConnectError):
            await client.send(request(url))
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_silent_upstream_times_out_then_pool_recovers() -> None:
    calls = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(1)
        writer.write(ok(b"late" if len(calls) == 1 else b"fresh"))
        await writer.drain()
        while True:
            await read_request(reader)
            writer.write(ok(b"fresh"))

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        client = Http1Client()
        with pytest.raises(UpstreamTimeout):
            await client.send(request(url, read_timeout=0.2))
        assert await exchange(client, url) == (200, b"fresh")
        assert len(connections) == 2  # the timed-out connection was dropped, never reused
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_stalled_body_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(2)

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        response = await client.send(request(url, read_timeout=0.2))
        with pytest.raises(UpstreamTimeout):
            await response.read()
        response.close()
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_large_body_arrives_intact() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: more than the read pause threshold

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received = await read_request(reader)
        writer.write(ok(payload, b"x-received: %d\r\n" % len(received)))
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        response = await client.send(request(url, body=b"x" * 300_000))
        chunks = []
        async for chunk in response.chunks():
            chunks.append(chunk)
            await asyncio.sleep(0)  # a slow reader: the client must pause and resume the socket
        response.release()
        assert b"".join(chunks) == payload
        assert max(len(chunk) for chunk in chunks) <= 64 * 1024
        assert int(dict(response.headers)["x-received"]) > 300_000
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_large_body_read_whole_is_intact() -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB: reading must not stay paused

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(payload))
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        assert await exchange(client, url) == (200, payload)
        await client.close()
        server.close()

    asyncio.run(scenario())


def test_refused_connection_raises_connect_error() -> None:
    async def scenario() -> None:
        server, url, _ = await serve(lambda reader, writer: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        client = Http1Client()
        with pytest.raises(UpstreamConnectError):
            await client.send(request(url))
        await client.close()

    asyncio.run(scenario())


def test_request_head_carries_host_and_length() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(ok(b"{}"))
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        client = Http1Client()
        await exchange(client, url + "?api-version=1")
        await client.close()
        server.close()

    asyncio.run(scenario())
    head = seen[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"POST /v1/chat/completions?api-version=1 HTTP/1.1"
    assert head[1].startswith(b"host: 127.0.0.1:")
    assert b"content-length: 14" in head
    assert seen[0].endswith(b'{"model": "m"}')
