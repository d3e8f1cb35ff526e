"""A client that disconnects cancels its upstream request at once, streaming or not."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from tests.proxy.faults import Setup, deployment, logged, raw_upstream, routing_spec, start_worker
from tests.raw_upstream import RawReply, RawUpstream
from weir.proxy.cancellation import run_until_disconnect

__all__ = ["raw_upstream", "start_worker"]  # fixtures used below

DEADLINE_SECONDS = 0.1  # the upstream must see its connection closed this soon after the client left


def open_request(setup: Setup, stream: bool) -> socket.socket:
    host, port = setup.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "chat", "stream": stream}).encode()
    connection = socket.create_connection((host, int(port)), timeout=10)
    connection.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
                        f"Authorization: Bearer {setup.key}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    return connection


def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def close_and_time_upstream(connection: socket.socket, raw_upstream: RawUpstream) -> float:
    """Close the client side; return how long the upstream took to see its own connection closed."""
    left_at = time.monotonic()
    connection.close()
    wait_for(lambda: raw_upstream.connections[0].closed_by_peer_at is not None, timeout=2)
    return raw_upstream.connections[0].closed_by_peer_at - left_at  # type: ignore[operator]


def start(start_worker, raw_upstream: RawUpstream) -> Setup:  # type: ignore[no-untyped-def]
    spec = routing_spec({"up": raw_upstream.base_url}, [{"alias": "chat", "deployments": [deployment("up", timeout=30)]}])
    return start_worker(spec)


def test_disconnect_before_answer_cancels_upstream(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(head_delay=20, chunks=[b"never"]))
    setup = start(start_worker, raw_upstream)
    connection = open_request(setup, stream=False)
    wait_for(lambda: raw_upstream.connections and raw_upstream.connections[0].request)

    assert close_and_time_upstream(connection, raw_upstream) < DEADLINE_SECONDS
    assert logged(setup.gateway, "up/m=cancelled/-")


def test_disconnect_mid_stream_cancels_upstream(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n", b"data: {\"n\": 2}\n\n"], chunk_delay=20))
    setup = start(start_worker, raw_upstream)
    connection = open_request(setup, stream=True)
    received = b""
    while b'data: {"n": 1}' not in received:
        received += connection.recv(65536)

    assert close_and_time_upstream(connection, raw_upstream) < DEADLINE_SECONDS
    assert logged(setup.gateway, "up/m=cancelled/200")


def test_gateway_serves_after_cancelled_requests(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(head_delay=20, chunks=[b"never"]))
    setup = start(start_worker, raw_upstream)
    for index in range(3):
        connection = open_request(setup, stream=False)
        wait_for(lambda: len(raw_upstream.connections) > index and raw_upstream.connections[index].request)
        connection.close()
    raw_upstream.script(RawReply(headers={"content-type": "application/json"}, chunks=[b"{\"ok\": true}"]))

    response = setup.post({"model": "chat"})

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    wait_for(lambda: all(c.closed_by_peer_at for c in raw_upstream.connections[:3]), timeout=2)


class FakeProtocol:
    """Only the disconnect future of an RSGI protocol, completed when a test declares that the client left."""

    def __init__(self) -> None:
        self.disconnect: asyncio.Future[None] | None = None

    def client_disconnect(self) -> asyncio.Future[None]:
        self.disconnect = asyncio.get_running_loop().create_future()
        return self.disconnect


def test_finished_work_is_not_cancelled() -> None:
    async def scenario() -> tuple[bool, bool]:
        protocol = FakeProtocol()
        result = await run_until_disconnect(protocol, asyncio.sleep(0.01))
        return result, protocol.disconnect is not None and protocol.disconnect.cancelled()

    disconnected, watcher_cancelled = asyncio.run(scenario())

    assert disconnected is False
    assert watcher_cancelled is True


def test_disconnect_cancels_running_work() -> None:
    seen: list[str] = []

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def scenario() -> bool:
        protocol = FakeProtocol()
        asyncio.get_running_loop().call_later(0.05, lambda: protocol.disconnect.set_result(None))  # type: ignore[union-attr]
        return await run_until_disconnect(protocol, work())

    assert asyncio.run(scenario()) is True
    assert seen == ["cancelled"]


def test_other_cancellation_still_propagates() -> None:
    async def scenario() -> None:
        inner = asyncio.ensure_future(run_until_disconnect(FakeProtocol(), asyncio.sleep(10)))
        await asyncio.sleep(0.01)
        inner.cancel()
        await inner

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
