"""A real gateway through a database outage, its health endpoints, and its shutdown on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.waiting import wait_until
from tests.conftest import seed
from tests.gateway import GatewayProcess
from tests.proxy.conftest import standard_spec
from tests.tcp_proxy import TcpProxy, relay  # noqa: F401  (relay is a fixture)
from tests.upstream import Reply, ScriptedUpstream, chat_chunk
from weir.crypto import CredentialBox
from weir.storage.database import connect
from weir.storage.virtual_keys import revoke_key

LOST = "Lost the connection to Postgres"
BACK = "Postgres is reachable again"


@pytest.fixture
def keys(database_url: str, credential_box: CredentialBox, upstream: ScriptedUpstream) -> dict[str, str]:
    return seed(database_url, credential_box, standard_spec(upstream.base_url),
                {"alice": "alice", "alice-2": "alice", "alice-3": "alice"})


def chat(client: httpx.Client, gateway: GatewayProcess, key: str) -> int:
    response = client.post(f"{gateway.base_url}/v1/chat/completions", json={"model": "chat", "messages": []},
                           headers={"Authorization": f"Bearer {key}"})
    return response.status_code


def readiness(gateway: GatewayProcess) -> tuple[int, dict[str, str]]:
    response = httpx.get(f"{gateway.base_url}/readyz", timeout=2)
    return response.status_code, response.json()


def accepts_connections(gateway: GatewayProcess) -> bool:
    try:
        httpx.get(f"{gateway.base_url}/healthz", timeout=1)
    except httpx.TransportError:
        return False
    return True


def test_outage_serves_valid_keys_without_failures(database_url: str, keys: dict[str, str], relay: TcpProxy,
                                                   start_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = start_gateway(env={"DATABASE_URL": relay.url})
    wait_until(lambda: readiness(gateway)[1]["database"] == "up", timeout=10)

    relay.cut()
    wait_until(lambda: readiness(gateway)[1]["database"] == "down", timeout=10)
    with connect(database_url) as connection:
        revoke_key(connection, keys["alice-2"][:12])  # missed: no notification reaches the gateway now

    statuses: list[int] = []
    with httpx.Client(timeout=5) as client:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(statuses) < 300:
            statuses.append(chat(client, gateway, keys["alice"]))
        assert readiness(gateway) == (200, {"status": "ready", "database": "down"})
        assert chat(client, gateway, keys["alice-2"]) == 200  # the snapshot still contains the revoked key

        relay.restore()
        wait_until(lambda: readiness(gateway)[1]["database"] == "up", timeout=10)
        wait_until(lambda: chat(client, gateway, keys["alice-2"]) == 401, timeout=5)

        # A change made right after Postgres is back arrives by notification.
        with connect(database_url) as connection:
            revoke_key(connection, keys["alice-3"][:12])
        delay = wait_until(lambda: chat(client, gateway, keys["alice-3"]) == 401, timeout=5)

    assert len(statuses) >= 10
    assert set(statuses) == {200}
    assert delay < 1.0
    log = gateway.log()
    assert log.count(LOST) == 1
    assert log.count(BACK) == 1


def test_health_endpoints_need_no_key_and_reveal_nothing(keys: dict[str, str], relay: TcpProxy,
                                                         start_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = start_gateway(env={"DATABASE_URL": relay.url})

    health = httpx.get(f"{gateway.base_url}/healthz")
    wait_until(lambda: readiness(gateway)[1]["database"] == "up", timeout=10)
    ready = httpx.get(f"{gateway.base_url}/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "database": "up"})
    for response in (health, ready):
        assert str(relay.port) not in response.text
        assert "127.0.0.1" not in response.text


def test_readiness_stays_ready_while_database_is_down(keys: dict[str, str], relay: TcpProxy,
                                                      start_gateway: Callable[..., GatewayProcess]) -> None:
    gateway = start_gateway(env={"DATABASE_URL": relay.url})
    wait_until(lambda: readiness(gateway)[1]["database"] == "up", timeout=10)

    relay.cut()
    wait_until(lambda: readiness(gateway)[1]["database"] == "down", timeout=10)

    assert readiness(gateway) == (200, {"status": "ready", "database": "down"})
    assert httpx.get(f"{gateway.base_url}/healthz").status_code == 200


def test_sigterm_lets_open_stream_finish(keys: dict[str, str], upstream: ScriptedUpstream,
                                         start_gateway: Callable[..., GatewayProcess]) -> None:
    words = [f"w{number}" for number in range(8)]
    upstream.script(Reply.sse([chat_chunk(word) for word in words], chunk_delay=0.25))
    gateway = start_gateway(workers=2)

    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json={"model": "chat", "stream": True},
                      headers={"Authorization": f"Bearer {keys['alice']}"}, timeout=20) as response:
        chunks = response.iter_bytes()
        received = next(chunks)
        # Orchestrators signal the main process only; granian passes it on.
        os.kill(gateway.process.pid, signal.SIGTERM)
        wait_until(lambda: not accepts_connections(gateway), timeout=3)
        received += b"".join(chunks)

    text = received.decode()
    assert all(f'"content": "{word}"' in text for word in words)
    assert text.endswith("data: [DONE]\n\n")
    assert gateway.process.wait(20) == 0
    # Each worker ran its teardown (`Gateway.stop`), where queued work is flushed.
    assert len(re.findall(r"Worker \d+ stopped", gateway.log())) == 2


def test_sigterm_drain_ends_at_drain_seconds(keys: dict[str, str], upstream: ScriptedUpstream,
                                             start_gateway: Callable[..., GatewayProcess]) -> None:
    upstream.script(Reply.sse([chat_chunk(f"w{number}") for number in range(40)], chunk_delay=0.5))
    gateway = start_gateway(extra_args=["--drain-seconds", "1"])

    with httpx.stream("POST", f"{gateway.base_url}/v1/chat/completions", json={"model": "chat", "stream": True},
                      headers={"Authorization": f"Bearer {keys['alice']}"}, timeout=30) as response:
        chunks = response.iter_bytes()
        received = next(chunks)
        os.kill(gateway.process.pid, signal.SIGTERM)
        signalled = time.monotonic()
        with pytest.raises(httpx.TransportError):
            for chunk in chunks:
                received += chunk

    # The stream would need 20 s; the drain time cuts it after about 1 s.
    assert gateway.process.wait(15) == 0
    assert time.monotonic() - signalled < 10
    assert not received.decode().endswith("data: [DONE]\n\n")
