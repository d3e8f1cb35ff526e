"""The request-log writer in-process, against the test Postgres behind a proxy that tests cut.

Records are built from real `Exchange` objects as the request path leaves
them. Every wait is bounded by a deadline; no assertion depends on speed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from tests.storage.test_request_logs import log_row, store
from tests.postgres_proxy import PostgresProxy
from weir.proxy.app import Exchange
from weir.proxy.request_log_writer import QUEUE_LIMIT_BATCHES, QUEUE_LIMIT_BYTES, RequestLogWriter
from weir.proxy.settings import ServeSettings
from weir.proxy.spool import Spool

BASE_TIME = time.time() - 60  # fixed per run, so that a record built twice has the same key


@pytest.fixture
def postgres_proxy(database_url: str) -> Iterator[PostgresProxy]:
    proxy = PostgresProxy(database_url).start()
    yield proxy
    proxy.stop()


def settings_for(url: str, spool_dir: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = dict(database_url=url, key_file="unused", log_flush_seconds=0.05, log_batch_size=20,
                                  log_write_timeout_seconds=2.0, log_spool_dir=str(spool_dir))
    return ServeSettings(**{**values, **overrides})


def finished_exchange(number: int, bodies: str = "full") -> tuple[Exchange, Any]:
    exchange = Exchange(f"req-{number:06d}", bodies, time.perf_counter())
    exchange.created_at = BASE_TIME + number / 1000
    exchange.status = 200
    exchange.alias = "chat"
    exchange.request_body = b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 200 + b'"}]}'
    if exchange.capture is not None:
        exchange.capture.keep(b'{"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}')
    exchange.completed = True
    scope = SimpleNamespace(method="POST", path="/v1/chat/completions", client="127.0.0.1:5000",
                            headers={"user-agent": "test"})
    return exchange, scope


def count_rows(database_url: str) -> tuple[int, int]:
    """Return the number of rows and of distinct request IDs."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*), count(DISTINCT request_id) FROM request_logs").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def test_writer_outage_spools_then_replays_exactly_once(database_url: str, postgres_proxy: PostgresProxy,
                                                        tmp_path: Path) -> None:
    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings_for(postgres_proxy.url, tmp_path / "spool"))
        await writer.start()
        for number in range(30):
            writer.record(*finished_exchange(number))
        await wait_until(lambda: writer.counters.written == 30)

        await asyncio.to_thread(postgres_proxy.cut)
        for number in range(30, 70):
            writer.record(*finished_exchange(number))
            await asyncio.sleep(0.005)
        await wait_until(lambda: writer.counters.spooled == 40)
        assert writer.spool.used_bytes() > 0

        await asyncio.to_thread(postgres_proxy.restore)
        await wait_until(lambda: writer.counters.replayed == 40)
        for number in range(70, 80):
            writer.record(*finished_exchange(number))
        await writer.stop()
        return writer

    writer = asyncio.run(scenario())

    assert writer.counters.written == 40
    assert writer.counters.spooled == 40
    assert writer.counters.replayed == 40
    assert writer.counters.dropped == 0
    assert count_rows(database_url) == (80, 80)
    assert not Spool(tmp_path / "spool", 1).has_segments()


def test_writer_spool_cap_holds_and_drops_are_counted(database_url: str, postgres_proxy: PostgresProxy,
                                                      tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    postgres_proxy.cut()
    cap = 4000

    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings_for(postgres_proxy.url, tmp_path / "spool", log_spool_max_bytes=cap))
        await writer.start()
        for number in range(100):
            writer.record(*finished_exchange(number))
        await writer.stop()
        return writer

    with caplog.at_level(logging.WARNING, logger="weir.proxy.request_log_writer"):
        writer = asyncio.run(scenario())

    spool = Spool(tmp_path / "spool", cap)
    assert 0 < spool.used_bytes() <= cap
    assert writer.counters.spooled > 0
    assert writer.counters.dropped > 0
    assert writer.counters.spooled + writer.counters.dropped == 100
    drop_warnings = [r for r in caplog.records if "Dropping request logs" in r.getMessage()]
    assert len(drop_warnings) == 1


def test_writer_stalled_postgres_spools_queue_overflow(database_url: str, postgres_proxy: PostgresProxy,
                                                      tmp_path: Path) -> None:
    settings = settings_for(postgres_proxy.url, tmp_path / "spool", log_batch_size=2, log_write_timeout_seconds=3.0)
    limit = QUEUE_LIMIT_BATCHES * 2

    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings)
        await writer.start()
        writer.record(*finished_exchange(0))
        await wait_until(lambda: writer.counters.written == 1)

        await asyncio.to_thread(postgres_proxy.stall)
        for number in range(1, 4):  # the next write waits on the stalled connection
            writer.record(*finished_exchange(number))
        await asyncio.sleep(0.3)
        for number in range(4, 4 + 3 * limit):
            writer.record(*finished_exchange(number))
        await asyncio.sleep(0)  # let the overflow callback run
        assert len(writer._queue) <= limit
        assert writer.counters.spooled > 0
        assert writer.counters.written == 1  # the stalled write has not finished

        await asyncio.to_thread(postgres_proxy.resume)
        await wait_until(lambda: count_rows(database_url)[0] == 4 + 3 * limit)
        await writer.stop()
        return writer

    writer = asyncio.run(scenario())

    assert writer.counters.dropped == 0
    assert count_rows(database_url) == (4 + 3 * limit, 4 + 3 * limit)


def test_writer_stalled_postgres_bounds_queued_bytes(database_url: str, postgres_proxy: PostgresProxy,
                                                     tmp_path: Path) -> None:
    settings = settings_for(postgres_proxy.url, tmp_path / "spool", log_batch_size=500,
                            log_write_timeout_seconds=3.0)
    body = b"y" * (1024 * 1024)  # 1 MiB a request: far fewer records than the record limit fill the byte limit
    count = QUEUE_LIMIT_BYTES // len(body) * 2

    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings)
        await writer.start()
        await asyncio.to_thread(postgres_proxy.stall)
        for number in range(count):
            exchange, scope = finished_exchange(number)
            exchange.request_body = body
            writer.record(exchange, scope)
            await asyncio.sleep(0)  # the overflow callback runs between requests, as it does when serving
        assert writer._queued_bytes <= QUEUE_LIMIT_BYTES + len(body)
        assert len(writer._queue) < count
        assert writer.counters.spooled > 0

        await asyncio.to_thread(postgres_proxy.resume)
        await wait_until(lambda: count_rows(database_url)[0] == count, timeout=60)
        await writer.stop()
        return writer

    writer = asyncio.run(scenario())

    assert writer.counters.dropped == 0
    assert count_rows(database_url) == (count, count)


def test_writer_stop_writes_queued_records(database_url: str, tmp_path: Path) -> None:
    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings_for(database_url, tmp_path / "spool", log_flush_seconds=60))
        await writer.start()
        for number in range(25):
            writer.record(*finished_exchange(number))
        await writer.stop()
        return writer

    writer = asyncio.run(scenario())

    assert writer.counters.written == 25
    assert count_rows(database_url) == (25, 25)


def test_writer_spool_replayed_by_next_writer(database_url: str, postgres_proxy: PostgresProxy,
                                                       tmp_path: Path) -> None:
    postgres_proxy.cut()
    settings = settings_for(postgres_proxy.url, tmp_path / "spool", log_flush_seconds=60)

    async def first_worker() -> RequestLogWriter:
        writer = RequestLogWriter(settings)
        await writer.start()
        for number in range(15):
            writer.record(*finished_exchange(number))
        await writer.stop()
        return writer

    async def second_worker() -> RequestLogWriter:
        writer = RequestLogWriter(settings_for(postgres_proxy.url, tmp_path / "spool"))
        await writer.start()
        await wait_until(lambda: writer.counters.replayed == 15)
        await writer.stop()
        return writer

    assert asyncio.run(first_worker()).counters.spooled == 15
    postgres_proxy.restore()
    assert asyncio.run(second_worker()).counters.replayed == 15
    assert count_rows(database_url) == (15, 15)


def test_writer_replay_skips_rows_already_stored(database_url: str, postgres_proxy: PostgresProxy,
                                                 tmp_path: Path) -> None:
    # A worker that died after writing part of a segment, before removing it,
    # leaves rows that are both in the table and in the spool.
    async def scenario() -> RequestLogWriter:
        writer = RequestLogWriter(settings_for(postgres_proxy.url, tmp_path / "spool"))
        await writer.start()
        for number in range(10):
            writer.record(*finished_exchange(number))
        await wait_until(lambda: writer.counters.written == 10)
        await asyncio.to_thread(postgres_proxy.cut)
        for number in range(20):  # the first ten again, with the same IDs and times
            writer.record(*finished_exchange(number))
        await wait_until(lambda: writer.counters.spooled == 20)
        await asyncio.to_thread(postgres_proxy.restore)
        await wait_until(lambda: writer.counters.replayed == 20)
        await writer.stop()
        return writer

    asyncio.run(scenario())

    rows, distinct = count_rows(database_url)
    assert rows == distinct
    assert distinct == 20


def test_metadata_mode_row_has_usage_but_no_bodies(database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = RequestLogWriter(settings_for(database_url, tmp_path / "spool"))
        await writer.start()
        writer.record(*finished_exchange(1, bodies="metadata"))
        writer.record(*finished_exchange(2, bodies="none"))
        await writer.stop()
        assert writer.counters.skipped == 1

    asyncio.run(scenario())

    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT request_id, bodies, request_body, response_body, total_tokens "
                                  "FROM request_logs").fetchall()
    assert rows == [("req-000001", "metadata", None, None, 7)]


def test_writer_drops_partitions_past_retention(database_url: str, tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    store(database_url, [log_row("old", old.timestamp()), log_row("today")])
    partition = f"request_logs_{old:%Y%m%d}"

    async def scenario() -> None:
        writer = RequestLogWriter(settings_for(database_url, tmp_path / "spool", log_retention_days=7))
        await writer.start()
        await wait_until(lambda: not partition_exists(database_url, partition))
        await writer.stop()

    asyncio.run(scenario())

    with psycopg.connect(database_url) as connection:
        remaining = connection.execute("SELECT request_id FROM request_logs").fetchall()
    assert remaining == [("today",)]


def partition_exists(database_url: str, name: str) -> bool:
    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone() == (True,)
