"""Reading token usage and stream text from the response shapes of OpenAI and Anthropic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from weir.proxy.usage import Usage, parse_response


def sse(*events: Any, done: bool = True, named: bool = False) -> bytes:
    lines = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}\n")
        lines.append(f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def test_chat_completion_usage_with_details() -> None:
    body = json.dumps({"choices": [], "usage": {
        "prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28,
        "prompt_tokens_details": {"cached_tokens": 12}, "completion_tokens_details": {"reasoning_tokens": 5}}})

    parsed = parse_response(body.encode(), streamed=False)

    assert parsed.usage == Usage(20, 8, 28, 12, 5)
    assert parsed.text is None


def test_embeddings_usage_has_no_completion() -> None:
    body = b'{"data": [], "usage": {"prompt_tokens": 6, "total_tokens": 6}}'

    assert parse_response(body, streamed=False).usage == Usage(6, None, 6, None, None)


def test_responses_api_usage() -> None:
    body = json.dumps({"output": [], "usage": {
        "input_tokens": 30, "output_tokens": 10, "total_tokens": 40,
        "input_tokens_details": {"cached_tokens": 16}, "output_tokens_details": {"reasoning_tokens": 4}}})

    assert parse_response(body.encode(), streamed=False).usage == Usage(30, 10, 40, 16, 4)


def test_anthropic_message_usage_counts_cache_in_prompt() -> None:
    body = json.dumps({"type": "message", "content": [{"type": "text", "text": "hi"}], "usage": {
        "input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20}})

    assert parse_response(body.encode(), streamed=False).usage == Usage(130, 5, 135, 100, None)


def test_chat_stream_text_and_final_usage_chunk() -> None:
    def chunk(text: str) -> dict[str, Any]:
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}

    body = sse(chunk("Hel"), chunk("lo"), {"choices": [], "usage": {
        "prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}})

    parsed = parse_response(body, streamed=True)

    assert parsed.text == "Hello"
    assert parsed.usage == Usage(4, 2, 6, None, None)


def test_chat_stream_without_usage_keeps_text() -> None:
    body = sse({"choices": [{"delta": {"role": "assistant"}}]}, {"choices": [{"delta": {"content": "ok"}}]})

    parsed = parse_response(body, streamed=True)

    assert parsed.text == "ok"
    assert parsed.usage == Usage()


def test_completions_stream_text() -> None:
    body = sse({"choices": [{"text": "one"}]}, {"choices": [{"text": " two"}]})

    assert parse_response(body, streamed=True).text == "one two"


def test_responses_api_stream() -> None:
    body = sse(
        {"type": "response.created", "response": {"usage": None}},
        {"type": "response.output_text.delta", "delta": "Bon"},
        {"type": "response.output_text.delta", "delta": "jour"},
        {"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 2,
                                                              "total_tokens": 9}}},
        done=False, named=True,
    )

    parsed = parse_response(body, streamed=True)

    assert parsed.text == "Bonjour"
    assert parsed.usage == Usage(7, 2, 9, None, None)


def test_anthropic_stream_combines_start_and_delta_usage() -> None:
    body = sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1,
                                                        "cache_read_input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
        done=False, named=True,
    )

    parsed = parse_response(body, streamed=True)

    assert parsed.text == "Hi there"
    assert parsed.usage == Usage(15, 9, 24, 3, None)


def test_stream_split_across_chunks_is_read_whole() -> None:
    body = sse({"choices": [{"delta": {"content": "abc"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                                                      "total_tokens": 2}})
    chunks = [body[:7], body[7:30], body[30:]]

    parsed = parse_response(b"".join(chunks), streamed=True)

    assert parsed.text == "abc"
    assert parsed.usage.total_tokens == 2


@pytest.mark.parametrize("body", [b"not json", b"\x00\xff binary", b"[1, 2]", b'{"usage": "many"}',
                                  b'{"usage": {"prompt_tokens": true}}'])
def test_unreadable_body_gives_empty_usage(body: bytes) -> None:
    assert parse_response(body, streamed=False).usage == Usage()


def test_streamed_json_body_is_read_as_document() -> None:
    # A chunked JSON response is relayed as a stream but is not SSE.
    body = b'{"usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}'

    assert parse_response(body, streamed=True).usage == Usage(2, 1, 3, None, None)
