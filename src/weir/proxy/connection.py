"""Closing a client's connection without ending its chunked response.

granian 2.8.9 ends every RSGI stream with the final zero-length chunk, even
when the application raises after `response_stream`. Its stream body only
ever yields data frames, and dropping the transport ends it cleanly, so a
client would take a stream that broke upstream for a complete one. Weir
therefore finds the worker's socket for the request in /proc/self/fd,
matched on both addresses, and shuts it down. granian then fails its next
write and drops the connection, and the client's body ends without the
final chunk. This works on Linux only. Elsewhere no socket is found, so the
stream ends cleanly and the gateway logs a warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat

logger = logging.getLogger(__name__)

FD_DIRECTORY = "/proc/self/fd"
# NOTE: granian queues the chunks already handed to it and writes them from
# its own threads, so this pause lets it flush them before the socket closes.
# A client too slow to take them in this time loses that tail of a stream
# that broke anyway.
FLUSH_SECONDS = 0.05


async def abort_connection(client: str, server: str) -> bool:
    """Shut down the TCP connection between `client` and `server` (as RSGI scopes write them, HOST:PORT).

    Return False when no such socket was found.
    """
    await asyncio.sleep(FLUSH_SECONDS)
    try:
        peer, local = _address(client), _address(server)
    except ValueError:
        logger.warning("Cannot abort the connection of client %r: not a TCP address; its stream ends cleanly", client)
        return False
    connection = _find_socket(peer, local)
    if connection is None:
        logger.warning("Could not find the connection of client %s to abort it; its stream ends cleanly", client)
        return False
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client closed it first: it is gone either way
    finally:
        connection.close()  # closes only the duplicate descriptor; granian closes its own
    return True


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _find_socket(peer: tuple[str, int], local: tuple[str, int]) -> socket.socket | None:
    try:
        names = os.listdir(FD_DIRECTORY)
    except OSError:
        return None
    for name in names:
        candidate = _tcp_socket(int(name))
        if candidate is None:
            continue
        try:
            if candidate.getpeername()[:2] == peer and candidate.getsockname()[:2] == local:
                return candidate
        except OSError:
            pass
        candidate.close()
    return None


def _tcp_socket(descriptor: int) -> socket.socket | None:
    # A duplicate keeps the socket open while it is examined, so a descriptor
    # number reused by another connection meanwhile cannot be shut down by mistake.
    try:
        if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
            return None
        candidate = socket.socket(fileno=os.dup(descriptor))
    except OSError:
        return None
    if candidate.family not in (socket.AF_INET, socket.AF_INET6) or candidate.type != socket.SOCK_STREAM:
        candidate.close()
        return None
    return candidate
