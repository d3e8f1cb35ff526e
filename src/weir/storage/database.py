"""Connections to Postgres, and the wording of connection failures.

A connection URL may carry a password, so every message that names a
database shows it through `mask_url`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from weir.errors import DatabaseError

CONNECT_TIMEOUT_SECONDS = 5


def mask_url(url: str) -> str:
    """Return `url` with its password replaced by `***`, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[dict]]:  # type: ignore[type-arg]
    """Open one connection with dict rows; commit on success, roll back on error."""
    try:
        connection = psycopg.connect(url, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.OperationalError:
        raise DatabaseError(unreachable_message(url)) from None
    with connection:
        yield connection


def unreachable_message(url: str) -> str:
    """Word a failed connection: which database, and what to check."""
    return (
        f"Cannot connect to Postgres at {mask_url(url)}. Check that the server is running "
        "and reachable, and that DATABASE_URL (or [database] url) is right."
    )
