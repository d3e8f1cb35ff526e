"""A test server that runs its own event loop in a background thread on 127.0.0.1.

Synchronous tests (and the OpenAI SDK) call the gateway while such a server
plays its upstream. Subclasses start their listener in `_run`,
set `port`, then call `_serve_forever`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Generic, TypeVar

ReplyT = TypeVar("ReplyT")


class BackgroundServer(Generic[ReplyT]):
    name = "server"

    def __init__(self, first_reply: ReplyT) -> None:
        self.replies: list[ReplyT] = [first_reply]
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: ReplyT) -> None:
        """Reply to the next requests with `replies`, in order; the last one repeats."""
        self.replies = list(replies)

    def next_reply(self) -> ReplyT:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def start(self) -> Any:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"the {self.name} did not start within 10 s")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        raise NotImplementedError

    def _serve_forever(self) -> None:
        self._started.set()
        self._loop.run_forever()
