"""`gatewayctl serve` and `gatewayctl migrate`."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import psycopg
import typer

from weir.cli.context import state
from weir.cli.output import console
from weir.config.loader import data_dir
from weir.config.runtime import credential_box, key_file
from weir.crypto import CredentialBox
from weir.errors import ConfigError, DatabaseError
from weir.logs import configure_logging
from weir.proxy.settings import ServeSettings
from weir.proxy.snapshot import build_snapshot
from weir.proxy.snapshot_store import SNAPSHOT_FILE_NAME, SnapshotStore, StoredSnapshot, database_identity
from weir.storage import migrations
from weir.storage.database import mask_url, unreachable_message
from weir.storage.snapshot import read_snapshot_rows

logger = logging.getLogger(__name__)

REQUEST_LOG_SPOOL = "spool/request_logs"  # inside the data directory


def serve(
    ctx: typer.Context,
    listen: Annotated[Optional[str], typer.Option(help="Address to listen on, as HOST:PORT. Default: \\[server] listen, else 127.0.0.1:8080.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes. Default: \\[server] workers, else 1.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Config file (TOML). Default: $WEIR_CONFIG.")] = None,
    drain_seconds: Annotated[Optional[float], typer.Option(min=0.001, help="On SIGTERM, seconds that in-flight requests and streams may take to finish. Default: \\[server] drain_seconds, else 30.")] = None,
    allow_stale_start: Annotated[bool, typer.Option("--allow-stale-start", help="When Postgres is unreachable, start from the last-known snapshot saved in the data directory.")] = False,
) -> None:
    """Serve the OpenAI-compatible proxy: migrate if needed, load the snapshot, serve.

    SIGTERM stops accepting connections, lets in-flight requests finish for
    up to the drain time, then exits 0.

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
    store = SnapshotStore((data_dir() / SNAPSHOT_FILE_NAME).resolve())
    prepare_snapshot(url, credential_box(), store, allow_stale_start)

    settings = ServeSettings(
        database_url=url, key_file=str(key_file().resolve()), max_body_bytes=spec.server.max_body_bytes,
        workers=worker_count,
        access_log=spec.server.access_log, log_level=spec.logging.level, log_bodies=spec.logging.bodies,
        snapshot_reload_seconds=spec.server.snapshot_reload_seconds, snapshot_file=str(store.path),
        allow_stale_start=allow_stale_start,
        upstream_client=spec.server.upstream_client,
        failures_before_cooldown=spec.routing.failures_before_cooldown,
        cooldown_seconds=spec.routing.cooldown_seconds, broken_stream=spec.routing.broken_stream,
        log_flush_seconds=spec.logging.flush_interval_seconds, log_batch_size=spec.logging.batch_size,
        log_write_timeout_seconds=spec.logging.write_timeout_seconds,
        log_spool_dir=str((data_dir() / REQUEST_LOG_SPOOL).resolve()),
        log_spool_max_bytes=spec.logging.spool_max_bytes, log_retention_days=spec.logging.retention_days,
    )
    os.environ.update(settings.to_environment())
    console.print(f"Weir is serving the OpenAI-compatible API on http://{host}:{port}/v1 "
                  f"with {worker_count} worker(s). Stop with Ctrl-C.", highlight=False)
    run_granian(host, port, worker_count, drain_seconds or spec.server.drain_seconds)


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


def prepare_snapshot(url: str, box: CredentialBox, store: SnapshotStore, allow_stale_start: bool) -> None:
    """Migrate and load the snapshot once before starting workers, so a broken setup fails here, in one line.

    When Postgres is unreachable, raise DatabaseError unless `allow_stale_start`
    is set and `store` contains a last-known snapshot of this database. That
    snapshot is then built once, as a check, and announced with a WARNING.
    """
    try:
        migrations.upgrade(url)
        rows = read_snapshot_rows(url)
    except (DatabaseError, psycopg.OperationalError, OSError):
        stored = store.load()
        if not allow_stale_start or stored is None:
            hint = _stale_start_hint(store, stored, allow_stale_start)
            raise DatabaseError(unreachable_message(url) + hint) from None
        _check_stored_database(store, stored, url)
        build_snapshot(stored.rows, box)
        logger.warning(
            "Postgres at %s is unreachable. Serving from the last-known snapshot in %s, saved %s ago: changes "
            "made since then, revocations included, take effect only when Postgres is back.",
            mask_url(url), store.path, _age(stored.saved_at),
        )
        return
    build_snapshot(rows, box)
    store.save(rows, database_identity(url))


def _stale_start_hint(store: SnapshotStore, stored: StoredSnapshot | None, allow_stale_start: bool) -> str:
    if stored is None:
        return f" No last-known snapshot exists in {store.path} to start from." if allow_stale_start else ""
    return (f" To serve from the last-known snapshot (saved {_age(stored.saved_at)} ago), "
            "pass --allow-stale-start.")


def _check_stored_database(store: SnapshotStore, stored: StoredSnapshot, url: str) -> None:
    if stored.database != database_identity(url):
        raise DatabaseError(
            f"{unreachable_message(url)} The last-known snapshot in {store.path} was saved from another "
            f"database ({stored.database}), so --allow-stale-start cannot use it."
        )


def _age(saved_at: float) -> str:
    seconds = max(0, int(time.time() - saved_at))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def run_granian(host: str, port: int, workers: int, drain_seconds: float) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    Granian(
        "weir.proxy.app:create_app", factory=True, address=host, port=port, interface=Interfaces.RSGI,
        workers=workers, loop=Loops.uvloop, http=HTTPModes.http1, runtime_mode=RuntimeModes.mt,
        log_access=False, backlog=2048,
        # On SIGTERM granian stops accepting and waits for in-flight requests
        # and streams (granian 2.8.9); past this timeout it kills the workers.
        # NOTE: a killed worker skips `__rsgi_del__`, so whatever it still
        # had queued (request-log records, for one) is lost with it.
        workers_kill_timeout=drain_seconds,  # type: ignore[arg-type]
    ).serve()
