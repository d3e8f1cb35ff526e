"""Weir under test, set up exactly as an operator would set it up.

A database of its own on the machine's Postgres (created here and dropped at
the end), a temporary data directory, a config file routing one alias per
upstream behaviour to the scripted upstream, then `gatewayctl migrate`,
`gatewayctl apply`, `gatewayctl keys create` and `gatewayctl serve`. The only difference between
the two configs is `[logging] bodies`, so the cost of request logging with
bodies shows as the difference between the two runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.processes import Service, Services, free_port
from bench.traffic import CHAT_PATH, UPSTREAM_CREDENTIAL, UPSTREAM_MODEL, UPSTREAM_PREFIXES, Target

# A Postgres server where this run may create and drop a database of its own.
ADMIN_URL_ENV = "WEIR_BENCH_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CREDENTIAL_ENV = "WEIR_BENCH_UPSTREAM_CREDENTIAL"
USER = "bench-user"
LOG_FLUSH_SECONDS = 2.0

# Alias a client sends for each upstream behaviour. Each deploys an upstream
# model of the same name, so Weir forwards the body unchanged.
ALIASES = {"json": UPSTREAM_MODEL, "slow": "bench-slow", "stream": "bench-stream", "stream-quick": "bench-stream-quick"}


class GatewayError(RuntimeError):
    """A `gatewayctl` step failed; the message names the command and shows its output."""


@contextmanager
def bench_database() -> Iterator[str]:
    """Create a database of this run's own, yield its URL, and drop it afterwards.

    The server is `$WEIR_BENCH_POSTGRES_URL` (a postgresql:// URL), else the local Postgres as user postgres.
    """
    admin_url = os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL
    name = f"weir_bench_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Gateway:
    """Weir's configuration for this run, and the serve processes started from it."""

    def __init__(self, repo: Path, work_dir: Path, database_url: str, upstream_port: int) -> None:
        self.gatewayctl = str(repo / ".venv" / "bin" / "gatewayctl")
        self.work_dir = work_dir
        self.database_url = database_url
        self.upstream_port = upstream_port
        self.env = {**os.environ, "DATABASE_URL": database_url, "WEIR_DATA_DIR": str(work_dir / "weir-data"),
                    CREDENTIAL_ENV: UPSTREAM_CREDENTIAL}
        self.env.pop("WEIR_CONFIG", None)
        self.key = ""

    def prepare(self) -> None:
        """Migrate, apply the config and issue the virtual key the load generators present."""
        config = self.write_config("full", free_port())
        self._run("migrate")
        self._run("apply", str(config))
        issued = json.loads(self._run("keys", "create", "--user", USER, "--name", "bench", "--json"))
        self.key = issued["key"]

    def serve(self, services: Services, bodies: str) -> tuple[Service, Target]:
        """Start `gatewayctl serve` with one worker and `[logging] bodies = bodies`; wait for /readyz."""
        port = free_port()
        config = self.write_config(bodies, port)
        service = services.start(f"weir-bodies-{bodies}", [
            self.gatewayctl, "serve", "--listen", f"127.0.0.1:{port}", "--workers", "1", "--config", str(config),
        ], env=self.env)
        service.wait_ready(port, "/readyz", timeout=60)
        routes = {behaviour: (CHAT_PATH, alias) for behaviour, alias in ALIASES.items()}
        target = Target(name=f"weir (bodies={bodies})", port=port, pid=service.pid,
                        headers=(("Authorization", f"Bearer {self.key}"),), routes=routes)
        return service, target

    def request_log_rows(self) -> int | None:
        """Return how many request logs Weir wrote to Postgres, or None when it has no request_logs table."""
        time.sleep(LOG_FLUSH_SECONDS)  # the writer sends records in batches, off the request path
        with psycopg.connect(self.database_url) as connection:
            if connection.execute("SELECT to_regclass('public.request_logs')").fetchone()[0] is None:  # type: ignore[index]
                return None
            return int(connection.execute("SELECT count(*) FROM request_logs").fetchone()[0])  # type: ignore[index]

    def write_config(self, bodies: str, port: int) -> Path:
        """Write the TOML an operator would write for this run; only `bodies` and the port vary."""
        providers, models = [], []
        for behaviour, alias in ALIASES.items():
            name = f"bench-upstream-{behaviour}"
            base_url = f"http://127.0.0.1:{self.upstream_port}{UPSTREAM_PREFIXES[behaviour]}/v1"
            providers.append(f'[[providers]]\nname = "{name}"\nkind = "openai-compatible"\n'
                             f'base_url = "{base_url}"\ncredential = "env:{CREDENTIAL_ENV}"\n')
            models.append(f'[[models]]\nalias = "{alias}"\n'
                          f'deployments = [{{ provider = "{name}", model = "{alias}", timeout = 60 }}]\n')
        aliases = ", ".join(f'"{alias}"' for alias in ALIASES.values())
        text = "\n".join([
            f'[server]\nlisten = "127.0.0.1:{port}"\nworkers = 1\n',
            f'[logging]\nbodies = "{bodies}"\n',
            *providers, *models,
            f'[[groups]]\nname = "bench"\naliases = [{aliases}]\n',
            f'[[users]]\nname = "{USER}"\nrole = "member"\ngroups = ["bench"]\n',
        ])
        path = self.work_dir / f"gateway-bodies-{bodies}.toml"
        path.write_text(text)
        return path

    def _run(self, *arguments: str) -> str:
        command = [self.gatewayctl, *arguments]
        completed = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise GatewayError(f"`gatewayctl {' '.join(arguments[:2])}` failed with status {completed.returncode}:\n"
                               f"{(completed.stdout + completed.stderr).strip()[-2000:]}")
        return completed.stdout
