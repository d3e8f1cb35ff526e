"""A TCP proxy on 127.0.0.1 in front of the test Postgres, which tests cut and restore.

Cutting closes every relayed connection and refuses new ones, which is what
a Postgres outage looks like to a client, without stopping the shared test
server. Stalling keeps every byte in flight, which is what a Postgres that
stopped responding looks like. The target is the server's Unix socket (the embedded Postgres) or its
TCP address, read from the database URL.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class PostgresProxy:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        parts = conninfo_to_dict(database_url)
        host = str(parts.get("host") or "/tmp")
        port = str(parts.get("port") or "5432")
        self._unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._target = (host, int(port))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The database URL through this proxy."""
        parts = conninfo_to_dict(self.database_url)
        parts.update(host="127.0.0.1", port=str(self.port))
        return make_conninfo("", **parts)

    def start(self) -> PostgresProxy:
        self._thread.start()
        self._call(self._listen(0))
        return self

    def cut(self) -> None:
        """Close every relayed connection and stop accepting new ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen(self.port))

    def stall(self) -> None:
        """Stop relaying bytes, in both directions, on every connection."""
        self._loop.call_soon_threadsafe(self._flowing.clear)  # type: ignore[union-attr]

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)  # type: ignore[union-attr]

    def stop(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self, port: int) -> None:
        if self._flowing is None:
            self._flowing = asyncio.Event()
            self._flowing.set()
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _shutdown(self) -> None:
        await self._cut()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix_path is not None:
                server_reader, server_writer = await asyncio.open_unix_connection(self._unix_path)
            else:
                server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        flowing = self._flowing
        assert flowing is not None
        await asyncio.gather(_pipe(client_reader, server_writer, flowing), _pipe(server_reader, client_writer, flowing))
        self._writers -= {client_writer, server_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    try:
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
