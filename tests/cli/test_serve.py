"""`gatewayctl serve` starting without Postgres: the one-line failure, and the stale start."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.waiting import wait_until
from tests.conftest import seed
from tests.gateway import GatewayProcess, free_port
from tests.proxy.conftest import standard_spec
from tests.tcp_proxy import TcpProxy, relay  # noqa: F401  (relay is a fixture)
from tests.upstream import ScriptedUpstream
from weir.crypto import CredentialBox
from weir.storage.database import connect
from weir.storage.virtual_keys import revoke_key


@pytest.fixture
def keys(database_url: str, credential_box: CredentialBox, upstream: ScriptedUpstream) -> dict[str, str]:
    return seed(database_url, credential_box, standard_spec(upstream.base_url), {"alice": "alice", "alice-2": "alice"})


def failed_start(start_gateway: Callable[..., GatewayProcess], **options: object) -> tuple[int, list[str]]:
    gateway = start_gateway(wait=False, **options)
    code = gateway.process.wait(60)
    return code, gateway.log().strip().splitlines()


def chat_status(gateway: GatewayProcess, key: str) -> int:
    response = httpx.post(f"{gateway.base_url}/v1/chat/completions", json={"model": "chat", "messages": []},
                          headers={"Authorization": f"Bearer {key}"}, timeout=5)
    return response.status_code


def database_state(gateway: GatewayProcess) -> str:
    return str(httpx.get(f"{gateway.base_url}/readyz", timeout=2).json()["database"])


def test_serve_unreachable_database_exits_with_one_line(start_gateway: Callable[..., GatewayProcess]) -> None:
    port = free_port()  # bound and released: nothing listens there
    url = f"postgresql://weir:hunter2-secret@127.0.0.1:{port}/weir"

    code, lines = failed_start(start_gateway, env={"DATABASE_URL": url})

    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("Error: Cannot connect to Postgres at postgresql://weir:***@127.0.0.1:")
    assert str(port) in lines[0]
    assert "DATABASE_URL" in lines[0]
    assert "hunter2-secret" not in lines[0]


def test_stale_start_is_refused_without_the_flag(keys: dict[str, str], relay: TcpProxy,
                                                 start_gateway: Callable[..., GatewayProcess]) -> None:
    start_gateway(env={"DATABASE_URL": relay.url}).stop()
    relay.cut()

    code, lines = failed_start(start_gateway, env={"DATABASE_URL": relay.url})

    assert code == 1
    assert len(lines) == 1
    assert "Cannot connect to Postgres" in lines[0]
    assert "pass --allow-stale-start" in lines[0]


def test_stale_start_without_saved_snapshot_fails(relay: TcpProxy,
                                                  start_gateway: Callable[..., GatewayProcess]) -> None:
    relay.cut()

    code, lines = failed_start(start_gateway, env={"DATABASE_URL": relay.url}, extra_args=["--allow-stale-start"])

    assert code == 1
    assert len(lines) == 1
    assert "No last-known snapshot exists" in lines[0]


def test_stale_start_rejects_another_databases_snapshot(keys: dict[str, str], relay: TcpProxy,
                                                        start_gateway: Callable[..., GatewayProcess]) -> None:
    start_gateway(env={"DATABASE_URL": relay.url}).stop()
    other = f"postgresql://weir:hunter2-secret@127.0.0.1:{free_port()}/other"

    code, lines = failed_start(start_gateway, env={"DATABASE_URL": other}, extra_args=["--allow-stale-start"])

    assert code == 1
    assert len(lines) == 1
    assert "saved from another database" in lines[0]
    assert "hunter2-secret" not in lines[0]


def test_stale_start_serves_then_catches_up(database_url: str, keys: dict[str, str], relay: TcpProxy,
                                            environment: dict[str, str],
                                            start_gateway: Callable[..., GatewayProcess]) -> None:
    start_gateway(env={"DATABASE_URL": relay.url}).stop()
    snapshot_file = Path(environment["WEIR_DATA_DIR"]) / "snapshot.msgpack"
    assert stat.S_IMODE(snapshot_file.stat().st_mode) == 0o600
    relay.cut()
    with connect(database_url) as connection:
        revoke_key(connection, keys["alice-2"][:12])

    gateway = start_gateway(env={"DATABASE_URL": relay.url}, extra_args=["--allow-stale-start"])

    assert "WARNING" in gateway.log()
    assert "Serving from the last-known snapshot" in gateway.log()
    assert database_state(gateway) == "down"
    assert chat_status(gateway, keys["alice"]) == 200
    assert chat_status(gateway, keys["alice-2"]) == 200  # stale: the revocation is not known yet

    relay.restore()
    wait_until(lambda: database_state(gateway) == "up", timeout=10)
    wait_until(lambda: chat_status(gateway, keys["alice-2"]) == 401, timeout=5)
    assert chat_status(gateway, keys["alice"]) == 200
    assert "Postgres is reachable again" in gateway.log()
