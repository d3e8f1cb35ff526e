"""The `--json` documents that commands print, and the description of every field.

`SHAPES` is the contract for scripts: the CLI reference renders it, and the
tests check that each document a command prints has exactly these fields.
Timestamps are ISO 8601 strings with a UTC offset, or null.
"""

from __future__ import annotations

from weir.admin.doctor import Check
from weir.admin.provider_probe import ProbeResult
from weir.cli.output import isoformat
from weir.storage.aliases import AliasRow
from weir.storage.groups import GroupRow
from weir.storage.providers import ProviderRow
from weir.storage.users import UserRow
from weir.storage.virtual_keys import VirtualKeyRow

_LIMITS = {
    "requests_per_minute": "Requests per minute allowed, or null for no limit of its own.",
    "tokens_per_minute": "Tokens per minute allowed, or null for no limit of its own.",
}

SHAPES: dict[str, dict[str, str]] = {
    "user": {
        "id": "Numeric ID.", "name": "Unique name.", "role": "admin, auditor or member.",
        "groups": "Names of the groups the user belongs to.", **_LIMITS,
        "source": "cli, or config when `gatewayctl apply` manages it.", "created_at": "Creation time.",
    },
    "deleted user": {
        "user": "Name of the deleted user.", "revoked_keys": "How many live virtual keys the deletion revoked.",
    },
    "group": {
        "id": "Numeric ID.", "name": "Unique name.", "members": "Names of its users.",
        "aliases": "Model aliases granted to its members.", "source": "cli or config.",
        "created_at": "Creation time.",
    },
    "virtual key": {
        "id": "Numeric ID.", "user": "Owner's name.", "name": "Name, unique per user.",
        "prefix": "Non-secret start of the secret, as listings show it.",
        "allowed_aliases": "Aliases the key is limited to, or null for all its user's aliases.",
        "expires_at": "Expiry time, or null.", "revoked_at": "Revocation time, or null.",
        "previous_expires_at": "Until when the secret before the last rotation stays valid, or null.",
        **_LIMITS, "created_at": "Creation time.",
        "key": "The secret itself: only in the output of `keys create` and `keys rotate`.",
    },
    "provider": {
        "id": "Numeric ID.", "name": "Unique name.", "kind": "openai, openai-compatible, anthropic or azure.",
        "base_url": "API base URL.", "has_credential": "Whether a credential is stored (it is never shown).",
        "headers": "Extra headers sent with every request, name to value.",
        "api_version": "Azure api-version or anthropic-version, or null.", "enabled": "Whether the proxy uses it.",
        "source": "cli or config.", "created_at": "Creation time.",
    },
    "removed provider": {
        "provider": "Name of the removed provider.",
        "removed_deployments": "Deployments removed with it, as alias/upstream-model.",
    },
    "provider test": {
        "provider": "Provider name.", "url": "The URL called, without query.",
        "status": "HTTP status of the response, or null when none came.", "ok": "Whether the status was 2xx.",
        "latency_ms": "Milliseconds until the response or the error.",
        "error": "Transport error when no response came, else null.",
    },
    "model alias": {
        "id": "Numeric ID.", "alias": "The name clients send in `model`.", "strategy": "weighted or least-busy.",
        "fallbacks": "Aliases tried when all deployments fail.", "max_attempts": "Deployments tried per request.",
        "retry_on": "Upstream statuses that move on to the next deployment.", "source": "cli or config.",
        "created_at": "Creation time.",
        "deployments": "Each: provider, model (upstream name), weight, timeout and connect_timeout (seconds).",
    },
    "removed model alias": {"alias": "Name of the removed alias.", "removed_deployments": "How many went with it."},
    "doctor": {
        "ok": "Whether every check passed.", "checks": "Each: name, ok, detail (one sentence).",
    },
}


def user_document(user: UserRow) -> dict[str, object]:
    return {"id": user.id, "name": user.name, "role": user.role, "groups": user.groups,
            "requests_per_minute": user.requests_per_minute, "tokens_per_minute": user.tokens_per_minute,
            "source": user.source, "created_at": isoformat(user.created_at)}


def group_document(group: GroupRow) -> dict[str, object]:
    return {"id": group.id, "name": group.name, "members": group.members, "aliases": group.aliases,
            "source": group.source, "created_at": isoformat(group.created_at)}


def key_document(key: VirtualKeyRow) -> dict[str, object]:
    return {
        "id": key.id, "user": key.user, "name": key.name, "prefix": key.prefix,
        "allowed_aliases": key.allowed_aliases, "expires_at": isoformat(key.expires_at),
        "revoked_at": isoformat(key.revoked_at), "previous_expires_at": isoformat(key.previous_expires_at),
        "requests_per_minute": key.requests_per_minute, "tokens_per_minute": key.tokens_per_minute,
        "created_at": isoformat(key.created_at),
    }


def provider_document(provider: ProviderRow) -> dict[str, object]:
    return {
        "id": provider.id, "name": provider.name, "kind": provider.kind, "base_url": provider.base_url,
        "has_credential": provider.credential is not None, "headers": provider.headers,
        "api_version": provider.api_version, "enabled": provider.enabled, "source": provider.source,
        "created_at": isoformat(provider.created_at),
    }


def probe_document(result: ProbeResult) -> dict[str, object]:
    return {"provider": result.provider, "url": result.url, "status": result.status, "ok": result.ok,
            "latency_ms": round(result.latency_ms, 1), "error": result.error}


def alias_document(alias: AliasRow) -> dict[str, object]:
    return {
        "id": alias.id, "alias": alias.name, "strategy": alias.strategy, "fallbacks": alias.fallbacks,
        "max_attempts": alias.max_attempts, "retry_on": alias.retry_on, "source": alias.source,
        "created_at": isoformat(alias.created_at),
        "deployments": [
            {"provider": d.provider, "model": d.upstream_model, "weight": d.weight,
             "timeout": d.timeout_seconds, "connect_timeout": d.connect_timeout_seconds}
            for d in alias.deployments
        ],
    }


def doctor_document(checks: list[Check]) -> dict[str, object]:
    return {"ok": all(check.ok for check in checks),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks]}
