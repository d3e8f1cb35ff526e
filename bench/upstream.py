"""The scripted OpenAI-compatible upstream that every benchmarked path ends at.

One process serves every scenario. The behaviour is chosen by a path prefix,
so a gateway needs one provider (one base URL) per behaviour and the request
body is never parsed here:

    POST /v1/chat/completions               a fixed chat completion (about 600 bytes), at once
    POST /delay/<ms>/v1/chat/completions    the same after <ms> milliseconds
    POST /sse/<ms>/v1/chat/completions      20 server-sent events <ms> apart, the last with `data: [DONE]`
    GET  /v1/models                         a one-model list, used as the readiness probe

It must never be the bottleneck, so it is a bare HTTP/1.1 server on uvloop's
protocol API instead of a framework: responses are prebuilt bytes, and a
paced stream costs one timer and one write per event. Run it with
`python -m bench.upstream --port PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import uvloop

STREAM_EVENTS = 20
CREATED = 1767225600  # a fixed timestamp, so every response is byte-for-byte the same
MAX_HEAD_BYTES = 64 * 1024


def chat_completion() -> bytes:
    """Return the fixed non-streaming response body, shaped like OpenAI's chat completion."""
    document = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": CREATED,
        "model": "bench-chat",
        "system_fingerprint": "fp_bench",
        "service_tier": "default",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": ("The benchmark upstream returns this fixed answer to every request, so that "
                            "each gateway is measured on the same bytes. It is long enough to look like a "
                            "short real completion of a few sentences, and short enough to stay cheap to serve."),
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 24, "completion_tokens": 52, "total_tokens": 76},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def stream_events() -> list[bytes]:
    """Return the `STREAM_EVENTS` writes of a streamed response; the last one carries `data: [DONE]` too."""
    writes = []
    for index in range(STREAM_EVENTS):
        last = index == STREAM_EVENTS - 1
        chunk = {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "bench-chat",
            "choices": [{"index": 0, "delta": {} if last else {"content": f"token{index} "},
                         "logprobs": None, "finish_reason": "stop" if last else None}],
        }
        event = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
        writes.append(event + b"data: [DONE]\n\n" if last else event)
    return writes


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


COMPLETION = _response("200 OK", "application/json", chat_completion())
MODELS = _response("200 OK", "application/json", json.dumps({"object": "list", "data": [
    {"id": "bench-chat", "object": "model", "created": CREATED, "owned_by": "bench"}]}).encode())
NOT_FOUND = _response("404 Not Found", "application/json", b'{"error":{"message":"No such path."}}')
BAD_REQUEST = _response("400 Bad Request", "application/json", b'{"error":{"message":"Malformed request."}}')
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
               b"transfer-encoding: chunked\r\n\r\n")
# Each event as one HTTP chunk; the terminating empty chunk rides with the last event.
STREAM_CHUNKS = [b"%x\r\n%s\r\n" % (len(event), event) for event in stream_events()]
STREAM_CHUNKS[-1] += b"0\r\n\r\n"

_behaviours: dict[bytes, tuple[str, float] | None] = {}


def behaviour_of(path: bytes) -> tuple[str, float] | None:
    """Return ("json" | "sse", seconds) for a chat path, or None; results are cached per path."""
    if path in _behaviours:
        return _behaviours[path]
    behaviour: tuple[str, float] | None = None
    suffix = b"/v1/chat/completions"
    if path.endswith(suffix):
        prefix = path[:-len(suffix)].strip(b"/").split(b"/")
        if prefix == [b""]:
            behaviour = ("json", 0.0)
        elif len(prefix) == 2 and prefix[0] in (b"delay", b"sse") and prefix[1].isdigit():
            behaviour = ("json" if prefix[0] == b"delay" else "sse", int(prefix[1]) / 1000)
    _behaviours[path] = behaviour
    return behaviour


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: requests get their responses in order, one at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.close_after = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        """Answer every complete request in the buffer, stopping at one whose answer is still pending."""
        while self.transport is not None and not self.busy:
            request = self.take_request()
            if request is None:
                return
            method, path = request
            self.answer(method, path)

    def take_request(self) -> tuple[bytes, bytes] | None:
        """Remove one complete request from the buffer; return its method and path, or None if incomplete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self.fail()
            return None
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self.fail()
            return None
        length, chunked = 0, False
        self.close_after = parts[2] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                self.close_after = value == b"close"
        if length < 0:
            self.fail()
            return None

        body_start = end + 4
        try:
            consumed = _chunked_body_end(self.buffer, body_start) if chunked else body_start + length
        except ValueError:
            self.fail()
            return None
        if consumed is None or consumed > len(self.buffer):
            return None
        del self.buffer[:consumed]
        return parts[0], parts[1].split(b"?", 1)[0]

    def answer(self, method: bytes, path: bytes) -> None:
        if method == b"GET" and path.endswith(b"/v1/models"):
            return self.send_final(MODELS)
        behaviour = behaviour_of(path) if method == b"POST" else None
        if behaviour is None:
            return self.send_final(NOT_FOUND)
        kind, seconds = behaviour
        if kind == "sse":
            self.busy = True
            self.transport.write(STREAM_HEAD + STREAM_CHUNKS[0])  # type: ignore[union-attr]
            self.timer = asyncio.get_running_loop().call_later(seconds, self.send_event, 1, seconds)
        elif seconds:
            self.busy = True
            self.timer = asyncio.get_running_loop().call_later(seconds, self.send_final, COMPLETION)
        else:
            self.send_final(COMPLETION)

    def send_event(self, index: int, interval: float) -> None:
        if self.transport is None:
            return
        if index == len(STREAM_CHUNKS) - 1:
            return self.send_final(STREAM_CHUNKS[index])
        self.transport.write(STREAM_CHUNKS[index])
        self.timer = asyncio.get_running_loop().call_later(interval, self.send_event, index + 1, interval)

    def send_final(self, data: bytes) -> None:
        """Write the last bytes of a response, then go on with the next request on this connection."""
        if self.transport is None:
            return
        self.transport.write(data)
        self.timer = None
        if self.close_after:
            self.transport.close()
            self.transport = None
            return
        if self.busy:
            self.busy = False
            self.process()

    def fail(self) -> None:
        if self.transport is not None:
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            self.transport = None


def _chunked_body_end(buffer: bytearray, start: int) -> int | None:
    """Return the offset just past a complete chunked body beginning at `start`, or None if incomplete."""
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if buffer[line_end:line_end + 4] == b"\r\n\r\n":
                return line_end + 4
            return None if trailer_end < 0 else trailer_end + 4
        position = line_end + 2 + size + 2
        if position > len(buffer):
            return None


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:`port` until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=4096, reuse_address=True)
    async with server:
        await stopped.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the benchmark's scripted upstream on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on.")
    uvloop.run(serve(parser.parse_args().port))
