"""Shutting down one TCP connection of this process, found by its two addresses."""

from __future__ import annotations

import asyncio
import socket

from weir.proxy.connection import abort_connection


def connected_pair() -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return listener, client, accepted


def test_abort_ends_the_matching_connection() -> None:
    listener, client, accepted = connected_pair()
    other_listener, other_client, other_accepted = connected_pair()
    host, port = client.getsockname()
    server_host, server_port = accepted.getsockname()
    accepted.sendall(b"partial body")

    found = asyncio.run(abort_connection(f"{host}:{port}", f"{server_host}:{server_port}"))

    client.settimeout(2)
    assert found is True
    assert client.recv(100) == b"partial body"
    assert client.recv(100) == b""  # end of stream, right after the bytes already sent
    other_accepted.sendall(b"still open")
    other_client.settimeout(2)
    assert other_client.recv(100) == b"still open"
    for sock in (listener, client, accepted, other_listener, other_client, other_accepted):
        sock.close()


def test_abort_of_unknown_connection_reports_false() -> None:
    assert asyncio.run(abort_connection("127.0.0.1:1", "127.0.0.1:2")) is False


def test_abort_of_non_tcp_client_reports_false() -> None:
    assert asyncio.run(abort_connection("unix-socket", "127.0.0.1:2")) is False
