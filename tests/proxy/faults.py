"""Helpers for the routing fault tests: aliases over several upstreams, and a gateway with chosen settings.

`start_worker` runs granian on the proxy app directly, as `gatewayctl serve`
does, but with `ServeSettings` the test chooses (cooldown, broken-stream
ending), so a test does not depend on how the CLI maps config to settings.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.conftest import seed
from tests.gateway import GatewayProcess
from tests.raw_upstream import RawUpstream
from tests.upstream import ScriptedUpstream
from weir.config.spec import GatewaySpec
from weir.crypto import CredentialBox
from weir.proxy.settings import ServeSettings


@dataclass
class Setup:
    url: str
    key: str
    gateway: GatewayProcess

    def post(self, body: Any, **options: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **options.pop("headers", {})}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=headers,
                          timeout=options.pop("timeout", 15), **options)

    def stream(self, body: Any, **options: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}", **options.pop("headers", {})}
        return httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, headers=headers,
                            timeout=options.pop("timeout", 15), **options)


def routing_spec(providers: dict[str, str], models: list[dict[str, Any]]) -> GatewaySpec:
    """Build a spec with one openai-compatible provider per `name: base_url`; user alice may use every model."""
    return msgspec.convert({
        "providers": [{"name": name, "kind": "openai-compatible", "base_url": url} for name, url in providers.items()],
        "models": models,
        "groups": [{"name": "team", "aliases": [model["alias"] for model in models]}],
        "users": [{"name": "alice", "groups": ["team"]}],
    }, GatewaySpec)


def deployment(provider: str, model: str = "m", **settings: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, "timeout": 2, **settings}


@pytest.fixture
def start_worker(database_url: str, credential_box: CredentialBox, environment: dict[str, str], tmp_path: Path,
                 start_gateway: Callable[..., GatewayProcess]) -> Callable[..., Setup]:
    """Seed `spec`, then serve it from one granian worker with `settings` passed to `ServeSettings`."""

    def start(spec: GatewaySpec, **settings: Any) -> Setup:
        keys = seed(database_url, credential_box, spec, {"alice": "alice"})
        serve = ServeSettings(database_url=database_url, key_file=str(tmp_path / "unused.key"), **settings)
        command = [sys.executable, "-m", "granian", "--interface", "rsgi", "--factory", "--host", "127.0.0.1",
                   "--port", "{port}", "--http", "1", "--loop", "uvloop", "--runtime-mode", "mt", "--no-ws",
                   "weir.proxy.app:create_app"]
        gateway = start_gateway(env=serve.to_environment(), command=command)
        return Setup(url=gateway.base_url, key=keys["alice"], gateway=gateway)

    return start


@pytest.fixture
def raw_upstream() -> Iterator[RawUpstream]:
    server = RawUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def second_upstream() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


def served_by(response: httpx.Response) -> str:
    return response.headers.get("x-weir-deployment", "")


def logged(gateway: GatewayProcess, text: str, timeout: float = 3.0) -> bool:
    """Return whether `text` appears in the gateway's log within `timeout` (the access line follows the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in gateway.log():
            return True
        time.sleep(0.05)
    return False


def raw_post(setup: Setup, body: bytes, timeout: float = 10.0) -> tuple[bytes, str]:
    """POST `body` over a bare socket; return every byte received and how the connection ended.

    The ending is "eof" (the gateway closed it), "reset", or "open" (still open
    after `timeout`, as a kept-alive connection is after a complete response).
    """
    host, port = setup.url.removeprefix("http://").split(":")
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {setup.key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    received = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = connection.recv(65536)
            except socket.timeout:
                return received, "open"
            except ConnectionResetError:
                return received, "reset"
            if not data:
                return received, "eof"
            received += data
            if received.endswith(b"\r\n0\r\n\r\n"):
                connection.settimeout(0.5)  # a complete chunked body: see whether the connection stays open
    return received, "open"
