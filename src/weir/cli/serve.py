"""`gatewayctl serve` and `gatewayctl migrate`."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from weir.cli.context import state
from weir.cli.output import console
from weir.config.loader import data_dir
from weir.config.runtime import credential_box, key_file
from weir.errors import ConfigError, DatabaseError
from weir.logs import configure_logging
from weir.proxy.settings import ServeSettings
from weir.proxy.snapshot import build_snapshot
from weir.storage import migrations
from weir.storage.database import unreachable_message
from weir.storage.snapshot import load_snapshot_rows

logger = logging.getLogger(__name__)

REQUEST_LOG_SPOOL = "spool/request_logs"  # inside the data directory


def serve(
    ctx: typer.Context,
    listen: Annotated[Optional[str], typer.Option(help="Address to listen on, as HOST:PORT. Default: [server] listen, else 127.0.0.1:8080.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes. Default: [server] workers, else 1.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Config file (TOML). Default: $WEIR_CONFIG.")] = None,
) -> None:
    """Serve the OpenAI-compatible proxy: migrate if needed, load the snapshot, serve.

    Example: gatewayctl serve --listen 127.0.0.1:8080 --workers 2
    """
    cli_state = state(ctx)
    if config is not None:
        cli_state.config_path = config
    spec = cli_state.spec
    configure_logging(spec.logging.level, access_log=spec.server.access_log)

    host, port = parse_listen(listen or spec.server.listen)
    worker_count = workers or spec.server.workers
    url = cli_state.database_url()
    migrations.upgrade(url)
    box = credential_box()
    check_snapshot_loads(url, box)

    settings = ServeSettings(
        database_url=url, key_file=str(key_file().resolve()), max_body_bytes=spec.server.max_body_bytes,
        access_log=spec.server.access_log, log_level=spec.logging.level, log_bodies=spec.logging.bodies,
        snapshot_reload_seconds=spec.server.snapshot_reload_seconds,
        log_flush_seconds=spec.logging.flush_interval_seconds, log_batch_size=spec.logging.batch_size,
        log_write_timeout_seconds=spec.logging.write_timeout_seconds,
        log_spool_dir=str((data_dir() / REQUEST_LOG_SPOOL).resolve()),
        log_spool_max_bytes=spec.logging.spool_max_bytes, log_retention_days=spec.logging.retention_days,
    )
    os.environ.update(settings.to_environment())
    console.print(f"Weir is serving the OpenAI-compatible API on http://{host}:{port}/v1 "
                  f"with {worker_count} worker(s). Stop with Ctrl-C.", highlight=False)
    run_granian(host, port, worker_count)


def migrate(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Only report whether migrations are pending; exit 1 if so.")] = False,
) -> None:
    """Bring the database schema up to date (alembic upgrade head).

    Example: gatewayctl migrate --check
    """
    url = state(ctx).database_url()
    current, head = migrations.current_revision(url), migrations.head_revision()
    if check:
        if current != head:
            raise DatabaseError(f"The schema is at revision {current or 'none'}; {head} is pending. Run `gatewayctl migrate`.")
        console.print(f"The schema is up to date (revision {head}).")
        return
    migrations.upgrade(url)
    if current == head:
        console.print(f"The schema was already up to date (revision {head}).")
    else:
        console.print(f"Migrated the schema from revision {current or 'none'} to {head}.")


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {listen!r} is not HOST:PORT. Example: 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def check_snapshot_loads(url: str, box: object) -> None:
    """Load the snapshot once before starting workers, so a broken setup fails here, in one line."""
    import psycopg

    try:
        rows = asyncio.run(load_snapshot_rows(url))
    except (psycopg.OperationalError, OSError):
        raise DatabaseError(unreachable_message(url)) from None
    build_snapshot(rows, box)  # type: ignore[arg-type]


def run_granian(host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    Granian(
        "weir.proxy.app:create_app", factory=True, address=host, port=port, interface=Interfaces.RSGI,
        workers=workers, loop=Loops.uvloop, http=HTTPModes.http1, runtime_mode=RuntimeModes.mt,
        log_access=False, backlog=2048,
    ).serve()
