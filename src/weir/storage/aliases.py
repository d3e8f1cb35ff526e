"""The `aliases` and `deployments` tables: model names clients use, and where they go."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from weir.errors import NotFound
from weir.ids import AliasId, DeploymentId, ProviderId
from weir.storage.constraints import translate_violations


@dataclass(frozen=True, slots=True)
class DeploymentFields:
    """One deployment of an alias, as written: a provider by name plus settings."""

    provider: str
    upstream_model: str
    weight: int = 1
    timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 10.0
    idle_timeout_seconds: float | None = None
    """Maximum pause between stream chunks, in seconds; None means `timeout_seconds`."""


@dataclass(frozen=True, slots=True)
class AliasFields:
    """The writable settings of an alias; None leaves a setting unchanged on update."""

    strategy: str | None = None
    fallbacks: list[str] | None = None
    max_attempts: int | None = None
    retry_on: list[int] | None = None
    log_bodies: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: DeploymentId
    provider_id: ProviderId
    provider: str
    upstream_model: str
    weight: int
    timeout_seconds: float
    connect_timeout_seconds: float
    idle_timeout_seconds: float | None


@dataclass(frozen=True, slots=True)
class AliasRow:
    id: AliasId
    name: str
    strategy: str
    fallbacks: list[str]
    max_attempts: int
    retry_on: list[int]
    log_bodies: str | None
    source: str
    created_at: datetime
    deployments: list[DeploymentRow] = field(default_factory=list)


_ALIAS_COLUMNS = "id, name, strategy, fallbacks, max_attempts, retry_on, log_bodies, source, created_at"
_DEPLOYMENT_SELECT = """
    SELECT d.id, d.provider_id, p.name AS provider, d.upstream_model, d.weight,
           d.timeout_seconds, d.connect_timeout_seconds, d.idle_timeout_seconds
    FROM deployments d JOIN providers p ON p.id = d.provider_id
    WHERE d.alias_id = %s ORDER BY d.position, d.id
"""
_VIOLATIONS = {
    "aliases_strategy_check": "The strategy must be 'weighted' or 'least-busy'.",
    "deployments_weight_check": "A deployment's weight must be 0 or more.",
    "deployments_idle_timeout_check": "A deployment's idle timeout must be more than 0 seconds.",
    "deployments_alias_provider_model_key": "The alias already has a deployment of that model on that provider.",
}


def create_alias(connection: psycopg.Connection[Any], name: str, fields: AliasFields,
                 deployments: list[DeploymentFields]) -> AliasRow:
    with translate_violations({"aliases_name_key": f"An alias named {name!r} already exists.", **_VIOLATIONS}):
        connection.execute(
            "INSERT INTO aliases (name, strategy, fallbacks, max_attempts, retry_on, log_bodies, source) "
            "VALUES (%s, coalesce(%s, 'weighted'), coalesce(%s::text[], '{}'), coalesce(%s, 3), "
            "coalesce(%s::integer[], '{429,500,502,503,504}'), %s, coalesce(%s, 'cli'))",
            (name, fields.strategy, fields.fallbacks, fields.max_attempts, fields.retry_on,
             fields.log_bodies, fields.source),
        )
    replace_deployments(connection, name, deployments)
    return get_alias(connection, name)


def get_alias_id(connection: psycopg.Connection[Any], name: str) -> AliasId:
    row = connection.execute("SELECT id FROM aliases WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No model alias named {name!r}. List aliases with `gatewayctl models list`.")
    return AliasId(row["id"])


def get_alias(connection: psycopg.Connection[Any], name: str) -> AliasRow:
    alias_id = get_alias_id(connection, name)
    row = connection.execute(f"SELECT {_ALIAS_COLUMNS} FROM aliases WHERE id = %s", (alias_id,)).fetchone()
    assert row is not None  # get_alias_id found it in this transaction
    deployments = [DeploymentRow(**d) for d in connection.execute(_DEPLOYMENT_SELECT, (alias_id,)).fetchall()]
    return AliasRow(**row, deployments=deployments)


def list_aliases(connection: psycopg.Connection[Any]) -> list[AliasRow]:
    names = connection.execute("SELECT name FROM aliases ORDER BY name").fetchall()
    return [get_alias(connection, row["name"]) for row in names]


def update_alias(connection: psycopg.Connection[Any], name: str, fields: AliasFields) -> AliasRow:
    alias_id = get_alias_id(connection, name)
    with translate_violations(_VIOLATIONS):
        connection.execute(
            "UPDATE aliases SET strategy = coalesce(%s, strategy), fallbacks = coalesce(%s::text[], fallbacks), "
            "max_attempts = coalesce(%s, max_attempts), retry_on = coalesce(%s::integer[], retry_on), "
            "log_bodies = coalesce(%s, log_bodies), source = coalesce(%s, source), updated_at = now() "
            "WHERE id = %s",
            (fields.strategy, fields.fallbacks, fields.max_attempts, fields.retry_on, fields.log_bodies,
             fields.source, alias_id),
        )
    return get_alias(connection, name)


def replace_deployments(connection: psycopg.Connection[Any], name: str,
                        deployments: list[DeploymentFields]) -> None:
    """Make `deployments`, in this order, exactly the deployments of alias `name`."""
    alias_id = get_alias_id(connection, name)
    provider_ids = {d.provider: _provider_id(connection, d.provider) for d in deployments}
    connection.execute("DELETE FROM deployments WHERE alias_id = %s", (alias_id,))
    with translate_violations(_VIOLATIONS):
        for position, deployment in enumerate(deployments):
            connection.execute(
                "INSERT INTO deployments (alias_id, provider_id, upstream_model, weight, timeout_seconds, "
                "connect_timeout_seconds, idle_timeout_seconds, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (alias_id, provider_ids[deployment.provider], deployment.upstream_model, deployment.weight,
                 deployment.timeout_seconds, deployment.connect_timeout_seconds, deployment.idle_timeout_seconds,
                 position),
            )


def remove_alias(connection: psycopg.Connection[Any], name: str) -> None:
    connection.execute("DELETE FROM aliases WHERE id = %s", (get_alias_id(connection, name),))


def _provider_id(connection: psycopg.Connection[Any], provider: str) -> ProviderId:
    row = connection.execute("SELECT id FROM providers WHERE name = %s", (provider,)).fetchone()
    if row is None:
        raise NotFound(f"No provider named {provider!r}. List providers with `gatewayctl providers list`.")
    return ProviderId(row["id"])
