"""The `rate_limits` table: requests and tokens per minute for a user, a key or an alias."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from weir.storage.aliases import get_alias_id
from weir.storage.users import get_user
from weir.storage.virtual_keys import get_key

_SUBJECT_COLUMNS = {"user": "user_id", "key": "virtual_key_id", "alias": "alias_id"}


def set_limits(connection: psycopg.Connection[Any], subject: str, name: str,
               requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
    """Set the limits of one user, key or alias, replacing any it had."""
    column = sql.Identifier(_SUBJECT_COLUMNS[subject])
    connection.execute(
        sql.SQL(
            "INSERT INTO rate_limits ({column}, requests_per_minute, tokens_per_minute) VALUES (%s, %s, %s) "
            "ON CONFLICT ({column}) DO UPDATE SET requests_per_minute = excluded.requests_per_minute, "
            "tokens_per_minute = excluded.tokens_per_minute"
        ).format(column=column),
        (_subject_id(connection, subject, name), requests_per_minute, tokens_per_minute),
    )


def clear_limits(connection: psycopg.Connection[Any], subject: str, name: str) -> None:
    column = sql.Identifier(_SUBJECT_COLUMNS[subject])
    connection.execute(
        sql.SQL("DELETE FROM rate_limits WHERE {column} = %s").format(column=column),
        (_subject_id(connection, subject, name),),
    )


def _subject_id(connection: psycopg.Connection[Any], subject: str, name: str) -> int:
    if subject == "user":
        return get_user(connection, name).id
    if subject == "alias":
        return get_alias_id(connection, name)
    return get_key(connection, name).id
