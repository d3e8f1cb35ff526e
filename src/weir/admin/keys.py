"""Issuing and rotating virtual keys. The secret exists only in the value returned here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from weir.crypto import generate_virtual_key, hash_virtual_key, virtual_key_prefix
from weir.storage import rate_limits
from weir.storage.aliases import get_alias_id
from weir.storage.virtual_keys import NewVirtualKey, VirtualKeyRow, create_key, get_key, rotate_key


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as created: the stored row plus the secret, which is shown once and never stored."""

    row: VirtualKeyRow
    secret: str

    def __repr__(self) -> str:
        return f"IssuedKey(prefix={self.row.prefix!r})"


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """Per-key rate limits; None means the key has no limit of that kind of its own."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


def issue_key(connection: psycopg.Connection[Any], user: str, name: str, *, expires_at: datetime | None = None,
              allowed_aliases: list[str] | None = None, log_bodies: str | None = None,
              limits: KeyLimits | None = None) -> IssuedKey:
    """Create a key for `user`; every alias in `allowed_aliases` must exist."""
    for alias in allowed_aliases or []:
        get_alias_id(connection, alias)
    secret = generate_virtual_key()
    row = create_key(connection, NewVirtualKey(
        user=user, name=name, hash=hash_virtual_key(secret), prefix=virtual_key_prefix(secret),
        allowed_aliases=allowed_aliases, log_bodies=log_bodies, expires_at=expires_at,
    ))
    if limits is not None and (limits.requests_per_minute or limits.tokens_per_minute):
        rate_limits.set_limits(connection, "key", str(row.id), limits.requests_per_minute,
                               limits.tokens_per_minute)
        row = get_key(connection, str(row.id))
    return IssuedKey(row=row, secret=secret)


def rotate(connection: psycopg.Connection[Any], reference: str, grace: timedelta | None) -> IssuedKey:
    """Give a key a new secret; with `grace`, the old secret keeps working that long."""
    secret = generate_virtual_key()
    valid_until = datetime.now(UTC) + grace if grace else None
    row = rotate_key(connection, reference, hash_virtual_key(secret), virtual_key_prefix(secret), valid_until)
    return IssuedKey(row=row, secret=secret)
