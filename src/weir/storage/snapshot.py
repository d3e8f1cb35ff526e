"""The read side of the snapshot: every row the proxy needs, in one transaction.

The proxy builds its in-memory snapshot from these rows; see
`weir.proxy.snapshot`. Reading everything in one REPEATABLE READ transaction
means the rows agree with each other even while an admin changes them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

SNAPSHOT_CHANNEL = "weir_snapshot"

_QUERIES = {
    "keys": """
        SELECT k.id, k.user_id, u.name AS user_name, k.name, k.prefix, k.hash, k.allowed_aliases,
               k.log_bodies, extract(epoch FROM k.expires_at) AS expires_at,
               k.previous_hash, extract(epoch FROM k.previous_expires_at) AS previous_expires_at
        FROM virtual_keys k JOIN users u ON u.id = k.user_id
        WHERE k.revoked_at IS NULL
    """,
    "grants": """
        SELECT m.user_id, a.name AS alias
        FROM group_members m JOIN group_aliases ga ON ga.group_id = m.group_id
        JOIN aliases a ON a.id = ga.alias_id
    """,
    "providers": """
        SELECT id, name, kind, base_url, credential, headers, api_version
        FROM providers WHERE enabled
    """,
    "aliases": "SELECT id, name, strategy, fallbacks, max_attempts, retry_on, log_bodies FROM aliases",
    "deployments": """
        SELECT id, alias_id, provider_id, upstream_model, weight, timeout_seconds, connect_timeout_seconds,
               idle_timeout_seconds
        FROM deployments ORDER BY alias_id, position, id
    """,
    "rate_limits": "SELECT user_id, virtual_key_id, alias_id, requests_per_minute, tokens_per_minute FROM rate_limits",
}


async def load_snapshot_rows(url: str, connect_timeout: float = 5) -> dict[str, list[dict[str, Any]]]:
    """Read every table the snapshot is built from, consistently."""
    async with await psycopg.AsyncConnection.connect(
        url, row_factory=dict_row, connect_timeout=connect_timeout
    ) as connection:
        await connection.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await connection.set_read_only(True)
        async with connection.transaction():
            rows: dict[str, list[dict[str, Any]]] = {}
            for name, query in _QUERIES.items():
                cursor = await connection.execute(query)
                rows[name] = await cursor.fetchall()
    return rows
