"""A TCP relay on 127.0.0.1 in front of the test Postgres, that a test can cut and restore.

Tests must not stop the shared Postgres, so they simulate an outage here.
`cut()` stops listening and drops every relayed connection, so clients see
refused connects and broken sessions at once. `restore()` listens again on
the same port. The relay runs its own event loop in a background thread, so
synchronous tests and gateway subprocesses can use it alike. It forwards to a
TCP address or to a Postgres Unix socket (the embedded server's).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@pytest.fixture
def relay(database_url: str) -> Iterator[TcpProxy]:
    """A relay in front of the test's database; import it into a test module to use it."""
    proxy = TcpProxy(database_url).start()
    yield proxy
    proxy.stop()


class TcpProxy:
    def __init__(self, database_url: str) -> None:
        self._open_target = _target_opener(database_url)
        self._database_url = database_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """`database_url`, but through this relay."""
        return make_conninfo(self._database_url, host="127.0.0.1", port=str(self.port))

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Stop listening and drop every relayed connection, as a vanished server would."""
        self._call(self._cut())

    def restore(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, coroutine: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await self._open_target()
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        self._writers.difference_update((client_writer, server_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


def _target_opener(database_url: str) -> Opener:
    parameters = conninfo_to_dict(database_url)
    host = str(parameters.get("host") or "127.0.0.1")
    port = int(parameters.get("port") or 5432)
    if host.startswith("/"):
        path = f"{host}/.s.PGSQL.{port}"
        return lambda: asyncio.open_unix_connection(path)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the relay forwards only to local addresses, not {host}")
    return lambda: asyncio.open_connection(host, port)
