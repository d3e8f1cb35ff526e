"""The `virtual_keys` table. Only SHA-256 digests and non-secret prefixes are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from weir.errors import Conflict, NotFound
from weir.ids import VirtualKeyId
from weir.storage.users import get_user


@dataclass(frozen=True, slots=True)
class VirtualKeyRow:
    id: VirtualKeyId
    user: str
    name: str
    prefix: str
    allowed_aliases: list[str] | None
    log_bodies: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    previous_expires_at: datetime | None
    created_at: datetime
    requests_per_minute: int | None
    tokens_per_minute: int | None


@dataclass(frozen=True, slots=True)
class NewVirtualKey:
    """The stored part of a new key: its digest and prefix, never the key."""

    user: str
    name: str
    hash: bytes
    prefix: str
    allowed_aliases: list[str] | None = None
    log_bodies: str | None = None
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"NewVirtualKey(user={self.user!r}, name={self.name!r}, prefix={self.prefix!r})"


_SELECT = """
    SELECT k.id, u.name AS user, k.name, k.prefix, k.allowed_aliases, k.log_bodies,
           k.expires_at, k.revoked_at, k.previous_expires_at, k.created_at,
           r.requests_per_minute, r.tokens_per_minute
    FROM virtual_keys k JOIN users u ON u.id = k.user_id
    LEFT JOIN rate_limits r ON r.virtual_key_id = k.id
"""


def create_key(connection: psycopg.Connection[Any], key: NewVirtualKey) -> VirtualKeyRow:
    user = get_user(connection, key.user)
    taken = connection.execute(
        "SELECT 1 FROM virtual_keys WHERE user_id = %s AND name = %s", (user.id, key.name)
    ).fetchone()
    if taken:
        raise Conflict(f"User {key.user!r} already has a key named {key.name!r}. Choose another --name.")
    row = connection.execute(
        "INSERT INTO virtual_keys (user_id, name, prefix, hash, allowed_aliases, log_bodies, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (user.id, key.name, key.prefix, key.hash, key.allowed_aliases, key.log_bodies, key.expires_at),
    ).fetchone()
    assert row is not None
    return get_key(connection, str(row["id"]))


def get_key(connection: psycopg.Connection[Any], reference: str) -> VirtualKeyRow:
    """Find a key by its numeric ID or by its prefix."""
    if reference.isdigit():
        rows = connection.execute(_SELECT + " WHERE k.id = %s", (int(reference),)).fetchall()
    else:
        rows = connection.execute(_SELECT + " WHERE k.prefix = %s", (reference,)).fetchall()
    if not rows:
        raise NotFound(f"No virtual key with ID or prefix {reference!r}. List keys with `gatewayctl keys list`.")
    if len(rows) > 1:
        raise Conflict(f"Several keys have the prefix {reference!r}. Use the key's ID instead.")
    return VirtualKeyRow(**rows[0])


def list_keys(connection: psycopg.Connection[Any], user: str | None = None) -> list[VirtualKeyRow]:
    if user is None:
        rows = connection.execute(_SELECT + " ORDER BY k.id").fetchall()
    else:
        owner = get_user(connection, user).name
        rows = connection.execute(_SELECT + " WHERE u.name = %s ORDER BY k.id", (owner,)).fetchall()
    return [VirtualKeyRow(**row) for row in rows]


def revoke_key(connection: psycopg.Connection[Any], reference: str) -> VirtualKeyRow:
    key = get_key(connection, reference)
    connection.execute(
        "UPDATE virtual_keys SET revoked_at = coalesce(revoked_at, now()), previous_hash = NULL, "
        "previous_expires_at = NULL WHERE id = %s",
        (key.id,),
    )
    return get_key(connection, str(key.id))


def rotate_key(connection: psycopg.Connection[Any], reference: str, new_hash: bytes, new_prefix: str,
               previous_valid_until: datetime | None) -> VirtualKeyRow:
    """Give a key a new secret; the old one stays valid until `previous_valid_until`, if set."""
    key = get_key(connection, reference)
    if key.revoked_at is not None:
        raise Conflict(f"Key {key.prefix} is revoked; issue a new key with `gatewayctl keys create`.")
    connection.execute(
        "UPDATE virtual_keys SET previous_hash = CASE WHEN %s::timestamptz IS NULL THEN NULL ELSE hash END, "
        "previous_expires_at = %s, hash = %s, prefix = %s WHERE id = %s",
        (previous_valid_until, previous_valid_until, new_hash, new_prefix, key.id),
    )
    return get_key(connection, str(key.id))
