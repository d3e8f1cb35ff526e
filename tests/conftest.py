"""Fixtures shared by the whole suite: Postgres, secrets, the scripted upstream, the gateway.

Every test that touches the database gets its own freshly migrated database.
Nothing here talks to any address but 127.0.0.1 and local Unix sockets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.database import DatabaseFactory
from tests.gateway import GatewayProcess
from tests.upstream import ScriptedUpstream
from weir.admin.keys import issue_key
from weir.cli.app import main
from weir.config.reconcile import apply_spec
from weir.config.spec import GatewaySpec
from weir.crypto import CredentialBox, generate_data_key
from weir.storage.database import connect
from weir.storage.embedded import start_embedded_postgres, stop_embedded_postgres

TEST_SECRET_KEY = generate_data_key()


def pytest_configure(config: pytest.Config) -> None:
    # pytest keeps only the three newest numbered temporary directories under
    # one root and deletes older ones at start-up, even while another pytest
    # process still uses them (with its embedded Postgres inside). A private
    # root per run keeps parallel runs out of each other's way.
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="weir-pytest-")
        config.stash[_PRIVATE_BASETEMP] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    private = config.stash.get(_PRIVATE_BASETEMP, None)
    if private is not None:
        shutil.rmtree(private, ignore_errors=True)


_PRIVATE_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    embedded_dir = None
    server_url = os.environ.get("WEIR_TEST_DATABASE_URL")
    if not server_url:
        embedded_dir = tmp_path_factory.mktemp("embedded")
        server_url = start_embedded_postgres(embedded_dir)
    factory = DatabaseFactory(server_url)
    yield factory
    factory.close()
    if embedded_dir is not None:
        stop_embedded_postgres(embedded_dir)


@pytest.fixture
def database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    url = database_factory.create()
    yield url
    database_factory.drop(url)


@pytest.fixture
def environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point Weir at the test database, a test secret key and a private data directory."""
    values = {"DATABASE_URL": database_url, "WEIR_SECRET_KEY": TEST_SECRET_KEY,
              "WEIR_DATA_DIR": str(tmp_path / "data")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEIR_CONFIG", raising=False)
    return {**os.environ, **values}


@pytest.fixture
def credential_box() -> CredentialBox:
    import base64

    return CredentialBox(base64.urlsafe_b64decode(TEST_SECRET_KEY))


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def gatewayctl(environment: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `gatewayctl ARGS...` in-process, as a user would, and return its exit code and output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def start_gateway(environment: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start `gatewayctl serve` processes on free ports; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def start(workers: int = 1, config: Path | None = None, wait: bool = True,
              extra_args: list[str] | None = None, env: dict[str, str] | None = None,
              command: list[str] | None = None) -> GatewayProcess:
        log_path = tmp_path / f"gateway-{len(started)}.log"
        process = GatewayProcess({**environment, **(env or {})}, log_path, workers=workers, config=config,
                                 extra_args=extra_args, command=command)
        started.append(process)
        return process.wait_ready() if wait else process

    yield start
    for process in started:
        process.stop()


def seed(database_url: str, box: CredentialBox, spec: GatewaySpec, keys: dict[str, str]) -> dict[str, str]:
    """Apply `spec`, then issue one key per `name: user` in `keys`; return `name: secret`."""
    with connect(database_url) as connection:
        apply_spec(connection, spec, box)
        return {name: issue_key(connection, user, name).secret for name, user in keys.items()}
