"""The database and secrets of this process, resolved from config, environment and defaults."""

from __future__ import annotations

from pathlib import Path

from weir.config.loader import data_dir, database_url
from weir.config.spec import GatewaySpec
from weir.crypto import CredentialBox, load_credential_box
from weir.errors import DatabaseError
from weir.storage.embedded import start_embedded_postgres
from weir.storage.migrations import current_revision, head_revision

KEY_FILE_NAME = "secret.key"


def resolve_database(spec: GatewaySpec) -> str:
    """Return the database URL to use, starting the embedded Postgres when none is configured."""
    url = database_url(spec)
    if url is None:
        return start_embedded_postgres(data_dir())
    return url


def key_file() -> Path:
    return data_dir() / KEY_FILE_NAME


def credential_box() -> CredentialBox:
    return load_credential_box(key_file())


def require_current_schema(url: str) -> None:
    """Raise unless the database schema is at the revision this Weir expects."""
    current, head = current_revision(url), head_revision()
    if current != head:
        raise DatabaseError(
            f"The database schema is at revision {current or 'none'}, but this Weir needs {head}. "
            "Run `gatewayctl migrate` first."
        )
