"""The checks behind `gatewayctl doctor`: database, migration level, secret key, providers.

Each check returns a `Check` instead of raising, so that one failure does not
hide the others. The config check lives in the CLI, which owns config loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from weir.admin.provider_probe import probe_provider
from weir.crypto import CredentialBox
from weir.errors import ConfigError, DatabaseError
from weir.storage import migrations
from weir.storage.providers import list_providers


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str


def check_schema(url: str) -> Check:
    """Check that Postgres is reachable and that its schema is at the revision this Weir needs."""
    try:
        current = migrations.current_revision(url)
    except DatabaseError as error:
        return Check("database", False, str(error))
    head = migrations.head_revision()
    if current != head:
        return Check("database", False, f"The schema is at revision {current or 'none'}, but this Weir needs "
                                        f"{head}. Run `gatewayctl migrate`.")
    return Check("database", True, f"Postgres is reachable and the schema is at revision {head}.")


def check_credentials(connection: psycopg.Connection[Any], box: CredentialBox) -> Check:
    """Check that the secret key decrypts every stored provider credential."""
    sealed = [(p.name, p.credential) for p in list_providers(connection) if p.credential is not None]
    failed = []
    for name, credential in sealed:
        try:
            box.open(credential)
        except ConfigError:
            failed.append(name)
    if failed:
        return Check("secret key", False,
                     f"The secret key cannot decrypt the credential of {len(failed)} provider(s): "
                     f"{', '.join(failed)}. Set WEIR_SECRET_KEY (or the key file) to the key that encrypted "
                     "them, or set each credential again with `gatewayctl providers update`.")
    if not sealed:
        return Check("secret key", True, "The secret key loads; no provider credential is stored yet.")
    return Check("secret key", True, f"The secret key decrypts all {len(sealed)} stored credential(s).")


def check_providers(connection: psycopg.Connection[Any], box: CredentialBox) -> list[Check]:
    """Probe every enabled provider once; a provider whose credential cannot be decrypted fails."""
    checks = []
    for provider in list_providers(connection):
        if not provider.enabled:
            continue
        name = f"provider {provider.name}"
        try:
            result = probe_provider(provider, box)
        except ConfigError as error:
            checks.append(Check(name, False, str(error)))
            continue
        checks.append(Check(name, result.ok, result.describe()))
    return checks
