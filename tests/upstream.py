"""A scripted upstream: a real HTTP server on 127.0.0.1 whose responses tests script.

It runs aiohttp's server in a background thread, so synchronous tests (and the
OpenAI SDK) can call the gateway while the upstream responds. Each request
takes the next scripted `Reply` (the last one repeats), and is recorded.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.background_server import BackgroundServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    chunks: list[bytes] | None = None
    """When set, the body is sent chunked, one write per item, `chunk_delay` apart."""
    chunk_delay: float = 0.0
    delay: float = 0.0
    """Seconds to wait before sending the status line."""

    @classmethod
    def json(cls, document: Any, status: int = 200) -> Reply:
        return cls(status=status, body=json.dumps(document).encode())

    @classmethod
    def sse(cls, events: list[Any], chunk_delay: float = 0.0, done: bool = True) -> Reply:
        chunks = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
        if done:
            chunks.append(b"data: [DONE]\n\n")
        return cls(headers={"content-type": "text/event-stream"}, chunks=chunks, chunk_delay=chunk_delay)


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedUpstream(BackgroundServer[Reply]):
    name = "scripted upstream"

    def __init__(self) -> None:
        super().__init__(Reply.json(chat_completion("hello")))
        self.requests: list[ReceivedRequest] = []
        self.chunk_times: list[float] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._serve_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(ReceivedRequest(
            method=request.method, path=request.path, query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()}, body=body, received_at=time.monotonic(),
        ))
        reply = self.next_reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.chunks is None:
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in reply.chunks:
            await response.write(chunk)
            self.chunk_times.append(time.monotonic())
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await response.write_eof()
        return response


def chat_completion(content: str, model: str = "upstream-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def chat_chunk(content: str, model: str = "upstream-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
