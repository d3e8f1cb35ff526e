"""The `request_logs` table: writing batches of records, managing daily partitions, and queries.

The proxy's writer calls the async functions; `gatewayctl logs` and
`gatewayctl usage` call the sync ones. Batches are copied into a temporary
table and moved over with ON CONFLICT DO NOTHING, so writing a record twice
(a spool replayed after a crash, say) stores it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg import sql


class RequestLogRow(msgspec.Struct, array_like=True, frozen=True):
    """One request log as written, ready for COPY; `created_at` is seconds since the epoch."""

    request_id: str
    created_at: float
    method: str
    path: str
    status: int
    error: str | None
    virtual_key_id: int | None
    key_prefix: str | None
    user_id: int | None
    user_name: str | None
    alias: str | None
    deployment: str | None
    provider: str | None
    stream: bool
    cancelled: bool
    attempts: int
    total_ms: float
    ttfb_ms: float | None
    overhead_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cached_tokens: int | None
    reasoning_tokens: int | None
    client_ip: str | None
    user_agent: str | None
    bodies: str
    request_body: str | None
    response_body: str | None
    response_text: str | None

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.created_at, UTC).date()


COLUMNS = RequestLogRow.__struct_fields__
_COLUMN_LIST = sql.SQL(", ").join(sql.Identifier(column) for column in COLUMNS)
_CREATE_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS request_logs_incoming "
    "(LIKE request_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY_INCOMING = sql.SQL("COPY request_logs_incoming ({columns}) FROM STDIN").format(columns=_COLUMN_LIST)
_COPY_DIRECT = sql.SQL("COPY request_logs ({columns}) FROM STDIN").format(columns=_COLUMN_LIST)
_MOVE_INCOMING = sql.SQL(
    "INSERT INTO request_logs ({columns}) SELECT {columns} FROM request_logs_incoming ON CONFLICT DO NOTHING"
).format(columns=_COLUMN_LIST)


async def insert_rows(connection: psycopg.AsyncConnection[Any], rows: list[RequestLogRow],
                      *, may_repeat: bool = True) -> int:
    """Store `rows` in one transaction; return how many were new (duplicates are skipped).

    Rows that may have been stored before (replayed from the spool) pass
    through a temporary table and `ON CONFLICT DO NOTHING`. Fresh rows, whose
    request IDs are new, are copied straight into `request_logs`, which costs
    Postgres about half the work per row.
    """
    if not may_repeat:
        async with connection.transaction(), connection.cursor() as cursor:
            async with cursor.copy(_COPY_DIRECT) as copy:
                for row in rows:
                    await copy.write_row(_copy_values(row))
        return len(rows)

    async with connection.transaction():
        async with connection.cursor() as cursor:
            await cursor.execute(_CREATE_INCOMING)
            async with cursor.copy(_COPY_INCOMING) as copy:
                for row in rows:
                    await copy.write_row(_copy_values(row))
            await cursor.execute(_MOVE_INCOMING)
            return cursor.rowcount


async def create_partitions(connection: psycopg.AsyncConnection[Any], days: set[date]) -> None:
    """Create the daily partitions of `days` that do not exist yet."""
    async with connection.transaction():
        for day in sorted(days):
            await connection.execute("SELECT weir_create_request_log_partition(%s)", (day,))


async def drop_partitions_async(connection: psycopg.AsyncConnection[Any], retention_days: int) -> list[str]:
    """Drop partitions older than `retention_days`; return their names (empty if another process is at it)."""
    async with connection.transaction():
        cursor = await connection.execute(_DROP, (retention_cutoff(retention_days),))
        return [row[0] for row in await cursor.fetchall()]


def drop_partitions(connection: psycopg.Connection[Any], retention_days: int) -> list[str]:
    """Drop partitions older than `retention_days`; return their names."""
    rows = connection.execute(_DROP, (retention_cutoff(retention_days),)).fetchall()
    return [_first(row) for row in rows]


def retention_cutoff(retention_days: int) -> date:
    """Return the first UTC day kept: today's partition counts as one of `retention_days`."""
    return datetime.now(UTC).date() - timedelta(days=retention_days - 1)


_DROP = "SELECT weir_drop_request_log_partitions(%s) AS name"


def _copy_values(row: RequestLogRow) -> tuple[Any, ...]:
    values = list(msgspec.structs.astuple(row))
    values[1] = datetime.fromtimestamp(row.created_at, UTC)
    return tuple(values)


def _first(row: Any) -> Any:
    return row["name"] if isinstance(row, dict) else row[0]


# -- Reading, for `gatewayctl logs` and `gatewayctl usage` -------------------------------------------

SUMMARY_COLUMNS = (
    "request_id", "created_at", "written_at", "method", "path", "status", "error", "key_prefix", "user_name",
    "alias", "deployment", "stream", "cancelled", "attempts", "total_ms", "ttfb_ms", "overhead_ms",
    "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
)
USAGE_DIMENSIONS = {"user": "user_name", "key": "key_prefix", "alias": "alias"}


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Conditions of `logs tail` and `logs search`; a field left at None adds no condition."""

    since: datetime | None = None
    until: datetime | None = None
    written_after: datetime | None = None
    user: str | None = None
    key: str | None = None
    alias: str | None = None
    status_min: int | None = None
    status_max: int | None = None
    text: str | None = None


def find_logs(connection: psycopg.Connection[Any], where: LogFilter, limit: int,
              oldest_first: bool = False) -> list[dict[str, Any]]:
    """Return summaries (no bodies) of the records matching `where`: the newest `limit`, in time order."""
    conditions, parameters = _conditions(where)
    query = sql.SQL("SELECT {columns} FROM request_logs WHERE {conditions} ORDER BY created_at {order}, "
                    "request_id LIMIT %s").format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in SUMMARY_COLUMNS),
        conditions=sql.SQL(" AND ").join(conditions),
        order=sql.SQL("ASC" if oldest_first else "DESC"),
    )
    rows = connection.execute(query, [*parameters, limit]).fetchall()
    return rows if oldest_first else list(reversed(rows))


def get_log(connection: psycopg.Connection[Any], request_id: str) -> dict[str, Any] | None:
    """Return every column of one record, bodies included, or None."""
    return connection.execute(
        "SELECT * FROM request_logs WHERE request_id = %s ORDER BY created_at LIMIT 1", (request_id,)
    ).fetchone()


def usage_by(connection: psycopg.Connection[Any], dimension: str, since: datetime) -> list[dict[str, Any]]:
    """Return requests and token sums since `since`, grouped by user, key prefix or alias."""
    column = sql.Identifier(USAGE_DIMENSIONS[dimension])
    query = sql.SQL(
        "SELECT {column} AS name, count(*) AS requests, count(*) FILTER (WHERE status >= 400) AS errors, "
        "coalesce(sum(prompt_tokens), 0) AS prompt_tokens, "
        "coalesce(sum(completion_tokens), 0) AS completion_tokens, "
        "coalesce(sum(total_tokens), 0) AS total_tokens, coalesce(sum(cached_tokens), 0) AS cached_tokens, "
        "coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens "
        "FROM request_logs WHERE created_at >= %s GROUP BY {column} ORDER BY total_tokens DESC, requests DESC"
    ).format(column=column)
    return connection.execute(query, (since,)).fetchall()


def _conditions(where: LogFilter) -> tuple[list[sql.Composable], list[Any]]:
    conditions: list[sql.Composable] = [sql.SQL("true")]
    parameters: list[Any] = []
    simple = (("created_at >= %s", where.since), ("created_at < %s", where.until),
              ("written_at > %s", where.written_after), ("user_name = %s", where.user),
              ("alias = %s", where.alias), ("status >= %s", where.status_min), ("status <= %s", where.status_max))
    for condition, value in simple:
        if value is not None:
            conditions.append(sql.SQL(condition))
            parameters.append(value)
    if where.key is not None:
        conditions.append(sql.SQL("(key_prefix = %s OR virtual_key_id::text = %s)"))
        parameters += [where.key, where.key]
    if where.text is not None:
        conditions.append(sql.SQL("(request_body ILIKE %s OR response_body ILIKE %s OR response_text ILIKE %s)"))
        pattern = "%" + where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        parameters += [pattern, pattern, pattern]
    return conditions, parameters
