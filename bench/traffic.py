"""Targets, request bodies and raw HTTP requests for the load generators.

A `Target` is one server under test (the upstream itself, the floor, Weir, a
peer gateway) with the process tree whose CPU and memory are measured. Each
target maps a behaviour of the upstream (`json`, `slow`, `stream`) to the
path and `model` a client would send to get it through that target.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CHAT_PATH = "/v1/chat/completions"
UPSTREAM_CREDENTIAL = "bench-upstream-credential"
"""The credential every gateway, and every client of the direct path, presents to the upstream, which ignores it."""
UPSTREAM_MODEL = "bench-chat"
SLOW_MILLISECONDS = 100
STREAM_INTERVAL_MILLISECONDS = 50
# Streams for the low-load measurement are paced faster, so that a few
# concurrent streams still give hundreds of first-event samples per run.
QUICK_STREAM_INTERVAL_MILLISECONDS = 5

# The upstream path prefix of each behaviour; see bench.upstream.
UPSTREAM_PREFIXES = {
    "json": "",
    "slow": f"/delay/{SLOW_MILLISECONDS}",
    "stream": f"/sse/{STREAM_INTERVAL_MILLISECONDS}",
    "stream-quick": f"/sse/{QUICK_STREAM_INTERVAL_MILLISECONDS}",
}


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    pid: int
    """Root of the process tree whose CPU time and memory are measured."""
    headers: tuple[tuple[str, str], ...]
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Behaviour → (path, model) that reaches it through this target."""


def direct_routes() -> dict[str, tuple[str, str]]:
    return {behaviour: (prefix + CHAT_PATH, UPSTREAM_MODEL) for behaviour, prefix in UPSTREAM_PREFIXES.items()}


def chat_body(model: str, *, stream: bool = False, size: int | None = None) -> bytes:
    """Return an OpenAI chat request; with `size`, the user message is padded so the body is `size` bytes."""
    document: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "Summarise the benefits of keep-alive connections in two sentences."},
        ],
        "max_tokens": 64,
        "temperature": 0,
    }
    if stream:
        document["stream"] = True
    body = json.dumps(document, separators=(",", ":")).encode()
    if size is None or size <= len(body):
        return body
    padding = "lorem ipsum " * ((size - len(body)) // 12 + 1)
    document["messages"][1]["content"] += " " + padding[:size - len(body) - 1]  # type: ignore[index]
    return json.dumps(document, separators=(",", ":")).encode()


def raw_request(target: Target, behaviour: str, body_size: int | None = None) -> bytes:
    """Return the complete HTTP/1.1 request for `behaviour` through `target`, as the load generators send it."""
    path, model = target.routes[behaviour]
    body = chat_body(model, stream=behaviour.startswith("stream"), size=body_size)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{target.port}", "Content-Type: application/json",
             *(f"{name}: {value}" for name, value in target.headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
