"""Cancelling a request's upstream work the moment its client disconnects.

granian's `protocol.client_disconnect()` returns a future that completes when
the client's connection closes. Weir races it against the request's work. So
when a client leaves while Weir waits for response headers, sleeps between
retries or relays a slow stream, the upstream connection closes at once, not
when the next chunk fails to reach the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def run_until_disconnect(protocol: Any, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work`, cancelling it if the client disconnects first; return True when that happened."""
    task = asyncio.current_task()
    watcher = asyncio.ensure_future(protocol.client_disconnect())
    disconnected = False

    def cancel(_: object) -> None:
        nonlocal disconnected
        if task is not None and not watcher.cancelled():
            disconnected = True
            task.cancel()

    watcher.add_done_callback(cancel)
    try:
        await work
    except asyncio.CancelledError:
        if not disconnected or task is None:
            raise
        task.uncancel()  # this cancellation is handled here; the request ends normally
        return True
    finally:
        watcher.remove_done_callback(cancel)
        watcher.cancel()
    return False
