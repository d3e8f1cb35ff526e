"""Streams through a real gateway: slow but healthy, stalled, broken midway, split, compressed."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import openai
import pytest

from tests.proxy.faults import (deployment, logged, raw_post, raw_upstream, routing_spec, second_upstream,
                                served_by, start_worker)
from tests.raw_upstream import CLOSE, HANG, RESET, RawReply, RawUpstream
from tests.upstream import Reply, ScriptedUpstream, chat_chunk

__all__ = ["raw_upstream", "second_upstream", "start_worker"]  # fixtures used below

STREAM = {"model": "chat", "stream": True}
TERMINATOR = b"\r\n0\r\n\r\n"


def single(start_worker, url: str, **settings: object):  # type: ignore[no-untyped-def]
    spec = routing_spec({"up": url}, [{"alias": "chat", "deployments": [deployment("up", **settings)]}])
    return start_worker(spec)


def test_slow_healthy_stream_outlives_every_timeout(start_worker, upstream: ScriptedUpstream) -> None:
    # A scaled-down long generation: 12 chunks 0.4 s apart run for about 4.8 s,
    # far past the 1 s first-byte and idle timeouts, and none of it is cut.
    words = [f"w{index} " for index in range(12)]
    upstream.script(Reply.sse([chat_chunk(word) for word in words], chunk_delay=0.4))
    setup = single(start_worker, upstream.base_url, timeout=1, idle_timeout=1)

    started = time.monotonic()
    with setup.stream(STREAM) as response:
        text = response.read().decode()

    assert time.monotonic() - started > 4
    assert [json.loads(line[6:])["choices"][0]["delta"]["content"]
            for line in text.split("\n\n") if line.startswith("data: {")] == words
    assert text.endswith("data: [DONE]\n\n")


def test_first_byte_timeout_is_separate_from_idle(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"], chunk_delay=1.0))
    setup = single(start_worker, raw_upstream.base_url, timeout=0.5, idle_timeout=3)

    body, ending = raw_post(setup, json.dumps(STREAM).encode())

    assert b"data: 3\n\n" in body
    assert body.endswith(TERMINATOR)


def test_slow_first_byte_times_out_with_504(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(head_delay=3, chunks=[b"late"]))
    setup = single(start_worker, raw_upstream.base_url, timeout=0.5, idle_timeout=10)

    started = time.monotonic()
    response = setup.post(STREAM)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 2.5


def test_stalled_stream_is_cut_without_clean_end(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n", b"data: {\"n\": 2}\n\n"], end=HANG))
    setup = single(start_worker, raw_upstream.base_url, timeout=2, idle_timeout=0.5)

    body, ending = raw_post(setup, json.dumps(STREAM).encode())

    assert b'data: {"n": 2}\n\n' in body
    assert not body.endswith(TERMINATOR)
    assert ending in ("eof", "reset")
    assert raw_upstream.connections[0].closed_by_peer_at is not None
    assert logged(setup.gateway, "up/m=idle_timeout/200")


@pytest.mark.parametrize("end", [CLOSE, RESET])
def test_broken_stream_never_ends_cleanly(start_worker, raw_upstream: RawUpstream, end: str) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n", b"data: {\"n\": 2}\n\n"], end=end))
    setup = single(start_worker, raw_upstream.base_url)

    body, ending = raw_post(setup, json.dumps(STREAM).encode())

    assert b'data: {"n": 1}\n\n' in body
    assert b'data: {"n": 2}\n\n' in body
    assert not body.endswith(TERMINATOR)
    assert b"[DONE]" not in body
    assert ending in ("eof", "reset")
    assert logged(setup.gateway, "up/m=broken/200")


def test_broken_stream_raises_in_http_client(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n"], end=CLOSE))
    setup = single(start_worker, raw_upstream.base_url)

    with pytest.raises(httpx.RemoteProtocolError), setup.stream(STREAM) as response:
        response.read()


def test_broken_stream_sends_sse_error_when_configured(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: " + json.dumps(chat_chunk("partial")).encode() + b"\n\n"],
                                 end=RESET))
    spec = routing_spec({"up": raw_upstream.base_url}, [{"alias": "chat", "deployments": [deployment("up")]}])
    setup = start_worker(spec, broken_stream="sse-error")

    body, _ = raw_post(setup, json.dumps(STREAM).encode())
    assert b"event: error\ndata: {\"error\":" in body
    assert b"upstream_stream_broken" in body
    assert b"[DONE]" not in body

    client = openai.OpenAI(base_url=f"{setup.url}/v1", api_key=setup.key, max_retries=0)
    stream = client.chat.completions.create(model="chat", messages=[], stream=True)
    with pytest.raises(openai.APIError, match="stopped in the middle"):
        for _ in stream:
            pass


def test_sse_error_mode_closes_when_break_splits_event(start_worker, raw_upstream: RawUpstream) -> None:
    # An error event after half an event would merge into it, so the
    # connection is closed instead.
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n", b"data: {\"n\""], end=CLOSE))
    spec = routing_spec({"up": raw_upstream.base_url}, [{"alias": "chat", "deployments": [deployment("up")]}])
    setup = start_worker(spec, broken_stream="sse-error")

    body, ending = raw_post(setup, json.dumps(STREAM).encode())

    assert b"event: error" not in body
    assert not body.endswith(TERMINATOR)
    assert ending in ("eof", "reset")


def test_sse_fields_and_split_events_pass_intact(start_worker, raw_upstream: RawUpstream) -> None:
    parts = [b": keep-alive comment\n\n", b"event: message_start\nda", b"ta: {\"a\":", b" 1}\n", b"\n",
             b"id: 7\nretry: 100\nevent: ping\ndata: {}\n\n", b"data: [DONE]\n\n"]
    raw_upstream.script(RawReply(chunks=parts, chunk_delay=0.05))
    setup = single(start_worker, raw_upstream.base_url)

    with setup.stream(STREAM) as response:
        text = response.read()

    assert text == b"".join(parts)


def test_retry_never_follows_first_streamed_byte(start_worker, raw_upstream: RawUpstream,
                                                 second_upstream: ScriptedUpstream) -> None:
    raw_upstream.script(RawReply(chunks=[b"data: {\"n\": 1}\n\n"], end=RESET))
    spec = routing_spec({"first": raw_upstream.base_url, "second": second_upstream.base_url}, [{
        "alias": "chat", "deployments": [deployment("first", weight=1000000), deployment("second", weight=1)],
    }])
    setup = start_worker(spec)

    body, _ = raw_post(setup, json.dumps(STREAM).encode())

    assert b"x-weir-deployment: first/m" in body
    assert second_upstream.requests == []


def test_gzip_response_keeps_its_encoding(proxy_gzip: tuple) -> None:  # type: ignore[type-arg]
    setup, document = proxy_gzip

    response = setup.post({"model": "chat"}, headers={"accept-encoding": "gzip"})

    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == document


def test_gzip_stream_keeps_its_encoding(start_worker, upstream: ScriptedUpstream) -> None:
    compressed = gzip.compress(b"data: {\"n\": 1}\n\ndata: [DONE]\n\n")
    upstream.script(Reply(headers={"content-type": "text/event-stream", "content-encoding": "gzip"},
                          chunks=[compressed[:10], compressed[10:]]))
    setup = single(start_worker, upstream.base_url)

    with setup.stream(STREAM, headers={"accept-encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())

    assert response.headers["content-encoding"] == "gzip"
    assert raw == compressed


@pytest.fixture
def proxy_gzip(start_worker, upstream: ScriptedUpstream):  # type: ignore[no-untyped-def]
    document = {"id": "x", "choices": []}
    upstream.script(Reply(body=gzip.compress(json.dumps(document).encode()),
                          headers={"content-type": "application/json", "content-encoding": "gzip"}))
    return single(start_worker, upstream.base_url), document


def test_deployment_header_names_stream_server(start_worker, upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.sse([chat_chunk("a")]))
    setup = single(start_worker, upstream.base_url)

    with setup.stream(STREAM) as response:
        response.read()

    assert served_by(response) == "up/m"
