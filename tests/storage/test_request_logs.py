"""The `request_logs` table: idempotent batch writes and daily partitions."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from weir.storage.database import connect
from weir.storage.request_logs import RequestLogRow, create_partitions, drop_partitions, insert_rows


def log_row(request_id: str, created_at: float | None = None, **fields: Any) -> RequestLogRow:
    values: dict[str, Any] = dict(
        request_id=request_id, created_at=time.time() if created_at is None else created_at, method="POST",
        path="/v1/chat/completions", status=200, error=None, virtual_key_id=1, key_prefix="wr-abc", user_id=1,
        user_name="alice", alias="chat", deployment="scripted/m", provider="scripted", stream=False,
        cancelled=False, attempts=1, total_ms=12.5, ttfb_ms=10.0, overhead_ms=0.5, prompt_tokens=5,
        completion_tokens=2, total_tokens=7, cached_tokens=None, reasoning_tokens=None, client_ip="127.0.0.1",
        user_agent="test", bodies="full", request_body='{"model": "chat"}', response_body="{}", response_text=None,
    )
    return RequestLogRow(**{**values, **fields})


def store(database_url: str, rows: list[RequestLogRow]) -> int:
    async def write() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            await create_partitions(connection, {row.day for row in rows})
            return await insert_rows(connection, rows)

    return asyncio.run(write())


def test_insert_same_rows_twice_stores_once(database_url: str) -> None:
    rows = [log_row(f"r{n}", 1_800_000_000.0 + n) for n in range(5)]

    first = store(database_url, rows)
    second = store(database_url, rows + [log_row("r9", 1_800_000_009.0)])

    with connect(database_url) as connection:
        count = connection.execute("SELECT count(*) AS n FROM request_logs").fetchone()
    assert (first, second) == (5, 1)
    assert count == {"n": 6}


def test_insert_keeps_nul_free_text_and_types(database_url: str) -> None:
    store(database_url, [log_row("r1", 1_800_000_000.0, stream=True, cancelled=True, response_text="héllo")])

    with connect(database_url) as connection:
        row = connection.execute("SELECT * FROM request_logs").fetchone()
    assert row is not None
    assert row["created_at"] == datetime.fromtimestamp(1_800_000_000.0, UTC)
    assert (row["stream"], row["cancelled"], row["response_text"]) == (True, True, "héllo")
    assert row["written_at"] is not None


def test_drop_partitions_removes_only_expired_days(database_url: str) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    store(database_url, [log_row("old", old.timestamp()), log_row("new")])

    with connect(database_url) as connection:
        dropped = drop_partitions(connection, 30)
        remaining = connection.execute("SELECT request_id FROM request_logs").fetchall()
        again = drop_partitions(connection, 30)

    assert dropped == [f"request_logs_{old:%Y%m%d}"]
    assert remaining == [{"request_id": "new"}]
    assert again == []


def test_drop_partitions_keeps_today_with_one_day_retention(database_url: str) -> None:
    store(database_url, [log_row("today")])

    with connect(database_url) as connection:
        drop_partitions(connection, 1)
        remaining = connection.execute("SELECT count(*) AS n FROM request_logs").fetchone()

    assert remaining == {"n": 1}
