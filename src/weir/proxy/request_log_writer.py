"""The request-log writer of one worker: a queue, a background task, Postgres, and a spool.

The request path calls `RequestLogWriter.record`, which appends to an
in-process queue and returns; it never awaits. A background task wakes every
`log_flush_seconds` (or as soon as `log_batch_size` records wait), turns the
records into rows, and writes them in batches. When Postgres fails or takes
longer than `log_write_timeout_seconds`, the batch goes to the spool on local
disk and Postgres is retried with a growing delay. Once it responds again, the
spool is replayed, oldest segment first. On stop, the queue is written or
spooled before the worker exits.

The same task creates the coming days' partitions and, at most once an hour,
drops partitions past `log_retention_days`.

Counters (`WriterCounters`) record how many records were written, spooled,
replayed from the spool, dropped (only when the spool is full, or when
Postgres rejects a row) and skipped (body logging `none`).

While one write waits on a slow Postgres, new records keep arriving. Once
more than `QUEUE_LIMIT_BATCHES` batches, or more than `QUEUE_LIMIT_BYTES` of
bodies, wait, the oldest are moved to the spool without waiting for that
write, so memory stays bounded even when requests carry large bodies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from weir.proxy.limits import Subject
from weir.proxy.request_log import RequestRecord, to_row
from weir.proxy.settings import ServeSettings
from weir.proxy.spool import Spool
from weir.storage.request_logs import RequestLogRow, create_partitions, drop_partitions_async, insert_rows

if TYPE_CHECKING:
    from weir.proxy.app import Exchange

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # delay before trying Postgres again, by consecutive failures
MAINTENANCE_SECONDS = 3600.0
REPLAY_SEGMENTS_PER_CYCLE = 4  # so that a long replay still lets fresh records through every cycle
QUEUE_LIMIT_BATCHES = 20  # queued batches beyond which the oldest records go to the spool at once
QUEUE_LIMIT_BYTES = 64 * 1024 * 1024  # queued request and response bodies beyond which the same happens
_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, OSError, asyncio.TimeoutError)

TokenCounter = Callable[[tuple[Subject, ...], int, float], None]
"""Receives the tokens a request used: its limited subjects, the total tokens, `time.monotonic()`."""


@dataclass(slots=True)
class WriterCounters:
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    skipped: int = 0


class RequestLogWriter:
    """Collects request records and gets them into `request_logs`, or into the spool."""

    def __init__(self, settings: ServeSettings, token_counter: TokenCounter | None = None) -> None:
        self._url = settings.database_url
        self._token_counter = token_counter
        self._interval = settings.log_flush_seconds
        self._batch_size = settings.log_batch_size
        self._timeout = settings.log_write_timeout_seconds
        self._retention_days = settings.log_retention_days
        self.spool = Spool(Path(settings.log_spool_dir), settings.log_spool_max_bytes)
        self.counters = WriterCounters()
        self._queue: deque[RequestRecord] = deque()
        self._usage_only: deque[RequestRecord] = deque()
        self._queue_limit = QUEUE_LIMIT_BATCHES * self._batch_size
        self._queued_bytes = 0
        self._overflow_scheduled = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._maintained_at: float | None = None
        self._partition_days: set[Any] = set()
        self._drop_reported = False

    def record(self, exchange: Exchange, scope: Any) -> None:
        """Queue the record of a finished request; called on the request path, so it only appends."""
        if exchange.bodies == "none":
            self.counters.skipped += 1
            if exchange.capture is not None:  # kept for a token limit: count its usage, write nothing
                self._usage_only.append(RequestRecord(exchange, scope))
            return
        record = RequestRecord(exchange, scope)
        self._queue.append(record)
        self._queued_bytes += record.size
        if len(self._queue) >= self._batch_size:
            self._wake.set()
        if self._over_limit(1) and not self._overflow_scheduled:
            # The writer task is stuck in a write: spool from a callback that
            # runs after this request, rather than on its path.
            self._overflow_scheduled = True
            asyncio.get_running_loop().call_soon(self._spool_overflow)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="weir-request-log-writer")

    async def stop(self) -> None:
        """Write or spool every queued record, then close the connection."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        logger.info("Request log writer stopped: %s", ", ".join(f"{k}={v}" for k, v in asdict(self.counters).items()))

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._flush()
                await self._replay()
                await self._maintain()
            except Exception:
                logger.exception("The request log writer failed a cycle; it continues with the next one")
        try:
            await self._flush()
        finally:
            self.spool.seal()
            await self._disconnect()

    async def _flush(self) -> None:
        if self._usage_only:
            records = list(self._usage_only)
            self._usage_only.clear()
            self._count_tokens(records, [to_row(record) for record in records])
        while self._queue:
            count = min(self._batch_size, len(self._queue))
            records = self._take(count)
            rows = [to_row(record) for record in records]
            self._count_tokens(records, rows)
            written = await self._write(rows, may_repeat=False)
            if written is None:
                self._spool_rows(rows)
            else:
                self.counters.written += written

    def _count_tokens(self, records: list[RequestRecord], rows: list[RequestLogRow]) -> None:
        # Token limits learn a request's usage here, off the request path,
        # once the response has been parsed for its record.
        if self._token_counter is None:
            return
        now = time.monotonic()
        for record, row in zip(records, rows):
            if record.exchange.limits and row.total_tokens:
                self._token_counter(record.exchange.limits, row.total_tokens, now)

    def _over_limit(self, share: float) -> bool:
        """Return True when more than `share` of the queue's record or byte limit waits."""
        return len(self._queue) > self._queue_limit * share or self._queued_bytes > QUEUE_LIMIT_BYTES * share

    def _take(self, count: int) -> list[RequestRecord]:
        records = [self._queue.popleft() for _ in range(count)]
        self._queued_bytes -= sum(record.size for record in records)
        return records

    def _spool_overflow(self) -> None:
        self._overflow_scheduled = False
        while self._queue and self._over_limit(0.5):
            records = self._take(min(self._batch_size, len(self._queue)))
            rows = [to_row(record) for record in records]
            self._count_tokens(records, rows)
            self._spool_rows(rows)

    async def _replay(self) -> None:
        if time.monotonic() < self._retry_at or not self.spool.has_rows():
            return
        if await self._reachable_connection() is None:
            return
        self.spool.seal()
        for _ in range(REPLAY_SEGMENTS_PER_CYCLE):
            segment = self.spool.claim()
            if segment is None:
                return
            for start in range(0, len(segment.rows), self._batch_size):
                if await self._write(segment.rows[start:start + self._batch_size]) is None:
                    return  # the segment stays claimed by this worker and is retried later
            self.spool.remove(segment)
            self.counters.replayed += len(segment.rows)
            logger.info("Replayed %d spooled request logs from %s", len(segment.rows), segment.path.name)

    async def _maintain(self) -> None:
        """Create today's and tomorrow's partitions and drop expired ones, at most hourly."""
        now = time.monotonic()
        if self._maintained_at is not None and now - self._maintained_at < MAINTENANCE_SECONDS:
            return
        connection = await self._reachable_connection()
        if connection is None:
            return
        today = datetime.now(UTC).date()
        try:
            await asyncio.wait_for(create_partitions(connection, {today, today + timedelta(days=1)}), self._timeout)
            dropped = await asyncio.wait_for(drop_partitions_async(connection, self._retention_days), self._timeout)
        except _UNREACHABLE as error:
            await self._database_lost(error)
            return
        self._maintained_at = now
        if dropped:
            self._partition_days.clear()
            logger.info("Dropped %d request log partitions past %d days of retention: %s", len(dropped),
                        self._retention_days, ", ".join(dropped))

    async def _write(self, rows: list[RequestLogRow], may_repeat: bool = True) -> int | None:
        """Write `rows`; return how many were handled, or None when Postgres is unreachable."""
        connection = await self._reachable_connection()
        if connection is None:
            return None
        try:
            await asyncio.wait_for(self._insert(connection, rows, may_repeat), self._timeout)
        except _UNREACHABLE as error:
            await self._database_lost(error)
            return None
        except psycopg.Error as error:
            logger.warning("Postgres rejected a batch of %d request logs (%s); writing them one by one",
                           len(rows), type(error).__name__)
            # A partition dropped meanwhile is one cause, so forget which exist.
            self._partition_days.clear()
            return await self._write_each(connection, rows)
        return len(rows)

    async def _write_each(self, connection: psycopg.AsyncConnection[Any], rows: list[RequestLogRow]) -> int | None:
        written = 0
        for row in rows:
            try:
                await asyncio.wait_for(self._insert(connection, [row]), self._timeout)
            except _UNREACHABLE as error:
                await self._database_lost(error)
                return None
            except psycopg.Error as error:
                # The SQLSTATE and class only: a driver message can quote a body.
                logger.error("Postgres rejected request log %s (%s, SQLSTATE %s); it is dropped",
                             row.request_id, type(error).__name__, error.sqlstate)
                self._count_dropped(1)
                continue
            written += 1
        return written

    async def _insert(self, connection: psycopg.AsyncConnection[Any], rows: list[RequestLogRow],
                      may_repeat: bool = True) -> None:
        days = {row.day for row in rows} - self._partition_days
        if days:
            await create_partitions(connection, days)
            self._partition_days |= days
        await insert_rows(connection, rows, may_repeat=may_repeat)

    def _spool_rows(self, rows: list[RequestLogRow]) -> None:
        try:
            stored = self.spool.append(rows)
        except OSError as error:
            logger.error("Cannot write to the request log spool in %s: %s", self.spool.directory, error.strerror)
            stored = 0
        self.counters.spooled += stored
        if stored < len(rows):
            self._count_dropped(len(rows) - stored)

    def _count_dropped(self, count: int) -> None:
        self.counters.dropped += count
        if not self._drop_reported:
            self._drop_reported = True
            logger.warning(
                "Dropping request logs: the spool in %s is full (cap %d bytes) or a record was rejected. "
                "Later drops are only counted. Bring Postgres back or raise [logging] spool_max_bytes.",
                self.spool.directory, self.spool.max_bytes,
            )

    async def _reachable_connection(self) -> psycopg.AsyncConnection[Any] | None:
        """Return an open connection, or None while Postgres is (recently) unreachable."""
        if time.monotonic() < self._retry_at:
            return None
        if self._connection is not None and not self._connection.closed:
            return self._connection
        try:
            self._connection = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=max(2, int(self._timeout))),
                self._timeout,
            )
        except _UNREACHABLE as error:
            await self._database_lost(error)
            return None
        if self._failures:
            logger.info("Postgres takes request logs again after %d failed attempts", self._failures)
            self._failures = 0
        return self._connection

    async def _database_lost(self, error: BaseException) -> None:
        self._failures += 1
        self._retry_at = time.monotonic() + RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS)) - 1]
        if self._failures == 1:
            logger.warning("Cannot write request logs to Postgres (%s); spooling them in %s until it is back",
                           type(error).__name__, self.spool.directory)
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            try:
                await asyncio.wait_for(connection.close(), self._timeout)
            except (*_UNREACHABLE, psycopg.Error):
                pass
