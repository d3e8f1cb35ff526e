"""The `users` table: people and services that own virtual keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from weir.errors import NotFound
from weir.ids import UserId
from weir.storage.constraints import translate_violations

ROLES = ("admin", "auditor", "member")


@dataclass(frozen=True, slots=True)
class UserRow:
    id: UserId
    name: str
    role: str
    source: str
    created_at: datetime
    groups: list[str]
    requests_per_minute: int | None
    tokens_per_minute: int | None


_SELECT = """
    SELECT u.id, u.name, u.role, u.source, u.created_at,
           coalesce(array_agg(g.name ORDER BY g.name) FILTER (WHERE g.id IS NOT NULL), '{}') AS groups,
           (SELECT r.requests_per_minute FROM rate_limits r WHERE r.user_id = u.id) AS requests_per_minute,
           (SELECT r.tokens_per_minute FROM rate_limits r WHERE r.user_id = u.id) AS tokens_per_minute
    FROM users u
    LEFT JOIN group_members m ON m.user_id = u.id
    LEFT JOIN groups g ON g.id = m.group_id
"""


def create_user(connection: psycopg.Connection[Any], name: str, role: str, source: str = "cli") -> UserRow:
    with translate_violations({"users_name_key": f"A user named {name!r} already exists."}):
        connection.execute(
            "INSERT INTO users (name, role, source) VALUES (%s, %s, %s)", (name, role, source)
        )
    return get_user(connection, name)


def get_user(connection: psycopg.Connection[Any], name: str) -> UserRow:
    row = connection.execute(_SELECT + " WHERE u.name = %s GROUP BY u.id", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No user named {name!r}. List users with `gatewayctl users list`.")
    return UserRow(**row)


def list_users(connection: psycopg.Connection[Any]) -> list[UserRow]:
    rows = connection.execute(_SELECT + " GROUP BY u.id ORDER BY u.name").fetchall()
    return [UserRow(**row) for row in rows]


def update_user(connection: psycopg.Connection[Any], name: str, *, role: str | None = None,
                source: str | None = None) -> UserRow:
    user = get_user(connection, name)
    connection.execute(
        "UPDATE users SET role = coalesce(%s, role), source = coalesce(%s, source), updated_at = now() "
        "WHERE id = %s",
        (role, source, user.id),
    )
    return get_user(connection, name)


def delete_user(connection: psycopg.Connection[Any], name: str) -> int:
    """Delete a user and their keys; return how many live keys that revoked."""
    user = get_user(connection, name)
    live = connection.execute(
        "SELECT count(*) AS n FROM virtual_keys WHERE user_id = %s AND revoked_at IS NULL", (user.id,)
    ).fetchone()
    connection.execute("DELETE FROM users WHERE id = %s", (user.id,))
    return int(live["n"]) if live else 0
