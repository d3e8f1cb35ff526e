"""A raw TCP upstream on 127.0.0.1 for faults an HTTP server library will not produce.

It writes responses byte for byte, so a test can reset a connection, stop a
chunked body halfway, split one SSE event over several writes, hold the
headers back, or wait without responding. It also records when the gateway
closes each connection, which is how a test observes a cancellation.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field

from tests.background_server import BackgroundServer

CLEAN, CLOSE, RESET, HANG = "clean", "close", "reset", "hang"


@dataclass
class RawReply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    chunks: list[bytes] = field(default_factory=list)
    """Body parts; each goes out as one chunk of a chunked body, in its own write."""
    chunk_delay: float = 0.0
    head_delay: float = 0.0
    """Seconds to wait before the status line."""
    end: str = CLEAN
    """After the chunks: CLEAN (final chunk), CLOSE (FIN without it), RESET (RST), or HANG (keep waiting)."""
    answer: bool = True
    """False: send nothing at all, then end as `end` sets."""


@dataclass
class RawConnection:
    request: bytes = b""
    opened_at: float = 0.0
    closed_by_peer_at: float | None = None
    """When the gateway closed this connection (seen as EOF or a reset), by time.monotonic()."""
    chunk_times: list[float] = field(default_factory=list)


class RawUpstream(BackgroundServer[RawReply]):
    """A server that replies to each connection with the next scripted `RawReply` (the last one repeats)."""

    name = "raw upstream"

    def __init__(self) -> None:
        super().__init__(RawReply(chunks=[b"data: {}\n\n"]))
        self.connections: list[RawConnection] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._serve_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = RawConnection(opened_at=time.monotonic())
        self.connections.append(connection)
        try:
            connection.request = await _read_request(reader)
            reply = self.next_reply()
            await self._answer(reply, reader, writer, connection)
        except (ConnectionError, asyncio.IncompleteReadError):
            connection.closed_by_peer_at = connection.closed_by_peer_at or time.monotonic()
        finally:
            writer.close()

    async def _answer(self, reply: RawReply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      connection: RawConnection) -> None:
        if reply.head_delay:
            if await _closed_within(reader, reply.head_delay):
                connection.closed_by_peer_at = time.monotonic()
                return
        if reply.answer:
            writer.write(_head(reply))
            await writer.drain()
            for chunk in reply.chunks:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                connection.chunk_times.append(time.monotonic())
                if reply.chunk_delay and await _closed_within(reader, reply.chunk_delay):
                    connection.closed_by_peer_at = time.monotonic()
                    return
        await self._finish(reply, reader, writer, connection)

    async def _finish(self, reply: RawReply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      connection: RawConnection) -> None:
        if reply.end == CLEAN and reply.answer:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            await reader.read()  # the gateway may keep the connection alive; wait until it goes
        elif reply.end == RESET:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        elif reply.end == HANG:
            await reader.read()  # returns at EOF: the gateway gave up on this connection
        else:
            writer.write_eof()
            await reader.read()
        connection.closed_by_peer_at = time.monotonic()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Wait `seconds`; return True early if the peer closed the connection meanwhile."""
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True
    return data == b""


def _head(reply: RawReply) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} Scripted"]
    lines += [f"{name}: {value}" for name, value in reply.headers.items()]
    lines.append("transfer-encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
