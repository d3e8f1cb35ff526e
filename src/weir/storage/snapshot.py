"""The read side of the snapshot: every row the proxy needs, in one transaction.

The proxy builds its in-memory snapshot from these rows; see
`weir.proxy.snapshot`. Reading everything in one REPEATABLE READ transaction
means the rows agree with each other even while an admin changes them.
Rows hold only plain values (numbers, text, bytes, lists, dicts), so they
can be persisted as they are; credentials stay sealed.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

SNAPSHOT_CHANNEL = "weir_snapshot"

_QUERIES = {
    "keys": """
        SELECT k.id, k.user_id, u.name AS user_name, k.name, k.prefix, k.hash, k.allowed_aliases,
               k.log_bodies, extract(epoch FROM k.expires_at)::float8 AS expires_at,
               k.previous_hash, extract(epoch FROM k.previous_expires_at)::float8 AS previous_expires_at
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


Rows = dict[str, list[dict[str, Any]]]

# Rows are converted in batches so that, when this runs in a worker thread,
# the event loop gets the GIL back between batches.
_FETCH_BATCH = 1000


def read_snapshot_rows(url: str, connect_timeout: int = 5) -> Rows:
    """Read every table the snapshot is built from, consistently (blocking)."""
    with psycopg.connect(url, row_factory=dict_row, connect_timeout=connect_timeout) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        rows: Rows = {}
        with connection.transaction():
            for name, query in _QUERIES.items():
                cursor = connection.execute(query)
                rows[name] = []
                while batch := cursor.fetchmany(_FETCH_BATCH):
                    rows[name].extend(batch)
    return rows
