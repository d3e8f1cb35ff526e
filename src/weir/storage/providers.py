"""The `providers` table: upstream accounts with their sealed credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from weir.errors import Conflict, NotFound
from weir.ids import ProviderId
from weir.storage.constraints import translate_violations

KINDS = ("openai", "openai-compatible", "anthropic", "azure")


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """A provider as stored. `credential` is sealed bytes, never clear text."""

    id: ProviderId
    name: str
    kind: str
    base_url: str
    credential: bytes | None
    headers: dict[str, str]
    api_version: str | None
    enabled: bool
    source: str
    created_at: datetime

    def __repr__(self) -> str:
        return f"ProviderRow(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class ProviderFields:
    """The writable fields of a provider; None leaves a field unchanged on update."""

    kind: str | None = None
    base_url: str | None = None
    credential: bytes | None = None
    headers: dict[str, str] | None = None
    api_version: str | None = None
    enabled: bool | None = None
    source: str | None = None

    def __repr__(self) -> str:
        return f"ProviderFields(kind={self.kind!r}, base_url={self.base_url!r})"


_COLUMNS = "id, name, kind, base_url, credential, headers, api_version, enabled, source, created_at"


def create_provider(connection: psycopg.Connection[Any], name: str, fields: ProviderFields) -> ProviderRow:
    with translate_violations({"providers_name_key": f"A provider named {name!r} already exists."}):
        connection.execute(
            "INSERT INTO providers (name, kind, base_url, credential, headers, api_version, enabled, source) "
            "VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, true), coalesce(%s, 'cli'))",
            (name, fields.kind, fields.base_url, fields.credential, Jsonb(fields.headers or {}),
             fields.api_version, fields.enabled, fields.source),
        )
    return get_provider(connection, name)


def get_provider(connection: psycopg.Connection[Any], name: str) -> ProviderRow:
    row = connection.execute(f"SELECT {_COLUMNS} FROM providers WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No provider named {name!r}. List providers with `gatewayctl providers list`.")
    return ProviderRow(**row)


def list_providers(connection: psycopg.Connection[Any]) -> list[ProviderRow]:
    rows = connection.execute(f"SELECT {_COLUMNS} FROM providers ORDER BY name").fetchall()
    return [ProviderRow(**row) for row in rows]


def update_provider(connection: psycopg.Connection[Any], name: str, fields: ProviderFields,
                    *, clear_credential: bool = False) -> ProviderRow:
    provider = get_provider(connection, name)
    connection.execute(
        """
        UPDATE providers SET
            kind = coalesce(%s, kind), base_url = coalesce(%s, base_url),
            credential = CASE WHEN %s THEN NULL ELSE coalesce(%s, credential) END,
            headers = coalesce(%s, headers), api_version = coalesce(%s, api_version),
            enabled = coalesce(%s, enabled), source = coalesce(%s, source), updated_at = now()
        WHERE id = %s
        """,
        (fields.kind, fields.base_url, clear_credential, fields.credential,
         None if fields.headers is None else Jsonb(fields.headers), fields.api_version,
         fields.enabled, fields.source, provider.id),
    )
    return get_provider(connection, name)


def deployments_using(connection: psycopg.Connection[Any], name: str) -> list[str]:
    """Return `alias/upstream_model` for every deployment on provider `name`."""
    rows = connection.execute(
        "SELECT a.name || '/' || d.upstream_model AS label FROM deployments d "
        "JOIN aliases a ON a.id = d.alias_id JOIN providers p ON p.id = d.provider_id "
        "WHERE p.name = %s ORDER BY 1",
        (name,),
    ).fetchall()
    return [row["label"] for row in rows]


def remove_provider(connection: psycopg.Connection[Any], name: str, *, force: bool = False) -> list[str]:
    """Remove a provider; with `force`, its deployments too. Return the deployments removed."""
    provider = get_provider(connection, name)
    used_by = deployments_using(connection, name)
    if used_by and not force:
        raise Conflict(
            f"Provider {name!r} is used by {len(used_by)} deployment(s): {', '.join(used_by)}. "
            "Remove them first, or pass --force to remove them with the provider."
        )
    connection.execute("DELETE FROM deployments WHERE provider_id = %s", (provider.id,))
    connection.execute("DELETE FROM providers WHERE id = %s", (provider.id,))
    return used_by
