"""`gatewayctl apply`: make Postgres hold what a config file declares.

Everything is applied in one transaction, in dependency order: providers,
then models (aliases and their deployments), then groups and their grants,
then users and their group memberships and limits. Every row written is
marked `source = 'config'`. Entities that the file does not mention are left
alone; removing them is a separate, explicit step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from weir.admin.providers import provider_fields
from weir.config.loader import resolve_secret
from weir.config.spec import GatewaySpec, LimitsSpec, ModelSpec, ProviderSpec, UserSpec
from weir.crypto import CredentialBox
from weir.errors import NotFound
from weir.storage import aliases, groups, providers, rate_limits, users
from weir.storage.aliases import AliasFields, DeploymentFields

SOURCE = "config"


@dataclass
class ApplyReport:
    """The changes of one apply: one `(action, kind, name)` per entity, action being created or updated."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, created: bool, kind: str, name: str) -> None:
        self.changes.append(("created" if created else "updated", kind, name))


def apply_spec(connection: psycopg.Connection[Any], spec: GatewaySpec, box: CredentialBox) -> ApplyReport:
    report = ApplyReport()
    with connection.transaction():
        for provider in spec.providers:
            report.add(_apply_provider(connection, provider, box), "provider", provider.name)
        for model in spec.models:
            report.add(_apply_model(connection, model), "model", model.alias)
        for group in spec.groups:
            created = _ensure(connection, groups.get_group, groups.create_group, group.name)
            groups.set_aliases(connection, group.name, group.aliases)
            report.add(created, "group", group.name)
        for user in spec.users:
            report.add(_apply_user(connection, user), "user", user.name)
    return report


def _apply_provider(connection: psycopg.Connection[Any], spec: ProviderSpec, box: CredentialBox) -> bool:
    where = f"providers[{spec.name!r}].credential"
    credential = resolve_secret(spec.credential, where) if spec.credential else None
    fields = provider_fields(
        box, kind=spec.kind, base_url=spec.base_url, credential=credential, headers=spec.headers,
        api_version=spec.api_version, enabled=spec.enabled, source=SOURCE,
    )
    try:
        providers.get_provider(connection, spec.name)
    except NotFound:
        providers.create_provider(connection, spec.name, fields)
        return True
    providers.update_provider(connection, spec.name, fields, clear_credential=credential is None)
    return False


def _apply_model(connection: psycopg.Connection[Any], spec: ModelSpec) -> bool:
    fields = AliasFields(
        strategy=spec.strategy, fallbacks=spec.fallbacks, max_attempts=spec.max_attempts,
        retry_on=spec.retry_on, log_bodies=spec.log_bodies, source=SOURCE,
    )
    deployments = [
        DeploymentFields(provider=d.provider, upstream_model=d.model, weight=d.weight,
                         timeout_seconds=d.timeout, connect_timeout_seconds=d.connect_timeout,
                         idle_timeout_seconds=d.idle_timeout)
        for d in spec.deployments
    ]
    try:
        aliases.get_alias_id(connection, spec.alias)
    except NotFound:
        aliases.create_alias(connection, spec.alias, fields, deployments)
        created = True
    else:
        aliases.update_alias(connection, spec.alias, fields)
        aliases.replace_deployments(connection, spec.alias, deployments)
        created = False
    _apply_limits(connection, "alias", spec.alias, spec.limits)
    return created


def _apply_user(connection: psycopg.Connection[Any], spec: UserSpec) -> bool:
    try:
        users.get_user(connection, spec.name)
    except NotFound:
        users.create_user(connection, spec.name, spec.role, SOURCE)
        created = True
    else:
        users.update_user(connection, spec.name, role=spec.role, source=SOURCE)
        created = False
    groups.set_user_groups(connection, spec.name, spec.groups)
    _apply_limits(connection, "user", spec.name, spec.limits)
    return created


def _apply_limits(connection: psycopg.Connection[Any], subject: str, name: str, limits: LimitsSpec | None) -> None:
    if limits is None:
        rate_limits.clear_limits(connection, subject, name)
    else:
        rate_limits.set_limits(connection, subject, name, limits.requests_per_minute, limits.tokens_per_minute)


def _ensure(connection: psycopg.Connection[Any], get: Any, create: Any, name: str) -> bool:
    try:
        get(connection, name)
    except NotFound:
        create(connection, name, SOURCE)
        return True
    return False
