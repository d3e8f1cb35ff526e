"""Token usage and assembled text, read from a relayed upstream response by the request-log writer.

Only the writer calls this, off the request path. It understands the usage
shapes of OpenAI's chat completions, completions, embeddings and responses
APIs and of Anthropic's messages API, both as one JSON document and as a
server-sent event stream. A body that is not JSON, or reports no usage,
gives a `Usage` of Nones rather than an error.

Anthropic reports cache reads and cache writes apart from `input_tokens`.
They are added into `prompt_tokens` so that it means the same as OpenAI's
(every input token), and the cache reads also go into `cached_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

_decode = msgspec.json.decode


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(slots=True)
class ParsedResponse:
    usage: Usage = field(default_factory=Usage)
    text: str | None = None
    """For a stream, the concatenated text deltas; None for a plain response."""


def parse_response(body: bytes, streamed: bool) -> ParsedResponse:
    """Read usage (and, for a stream, its text) from a whole response body."""
    if streamed and body.lstrip()[:5] in (b"data:", b"event", b":"):
        return _parse_stream(body)
    try:
        document = _decode(body)
    except msgspec.DecodeError:
        return ParsedResponse()
    parsed = ParsedResponse()
    if isinstance(document, dict):
        _merge_usage(parsed.usage, document.get("usage"))
    return parsed


def _parse_stream(body: bytes) -> ParsedResponse:
    parsed = ParsedResponse()
    pieces: list[str] = []
    for line in body.splitlines():
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if not data or data == b"[DONE]":
            continue
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            continue
        if isinstance(event, dict):
            _read_event(event, parsed.usage, pieces)
    parsed.text = "".join(pieces)
    return parsed


def _read_event(event: dict[str, Any], usage: Usage, pieces: list[str]) -> None:
    kind = event.get("type")
    if kind is None:  # OpenAI chat completion and completion chunks
        for choice in event.get("choices") or ():
            if isinstance(choice, dict):
                delta = choice.get("delta")
                text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
                if isinstance(text, str):
                    pieces.append(text)
        _merge_usage(usage, event.get("usage"))
    elif kind == "response.output_text.delta":  # OpenAI responses API
        _append_text(pieces, event.get("delta"))
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = event.get("response")
        if isinstance(response, dict):
            _merge_usage(usage, response.get("usage"))
    elif kind == "content_block_delta":  # Anthropic messages
        delta = event.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            _append_text(pieces, delta.get("text"))
    elif kind == "message_start":
        message = event.get("message")
        if isinstance(message, dict):
            _merge_usage(usage, message.get("usage"))
    elif kind == "message_delta":
        _merge_usage(usage, event.get("usage"))


def _append_text(pieces: list[str], text: Any) -> None:
    if isinstance(text, str):
        pieces.append(text)


def _merge_usage(usage: Usage, reported: Any) -> None:
    """Fold one reported usage object into `usage`; later reports win, as providers send running totals."""
    if not isinstance(reported, dict):
        return
    if "input_tokens" in reported or "output_tokens" in reported:
        _merge_input_output(usage, reported)
    else:
        _merge_prompt_completion(usage, reported)
    if usage.total_tokens is None and usage.prompt_tokens is not None:
        usage.total_tokens = usage.prompt_tokens + (usage.completion_tokens or 0)


def _merge_prompt_completion(usage: Usage, reported: dict[str, Any]) -> None:
    usage.prompt_tokens = _int(reported.get("prompt_tokens"), usage.prompt_tokens)
    usage.completion_tokens = _int(reported.get("completion_tokens"), usage.completion_tokens)
    usage.total_tokens = _int(reported.get("total_tokens"), usage.total_tokens)
    usage.cached_tokens = _int(_nested(reported, "prompt_tokens_details", "cached_tokens"), usage.cached_tokens)
    usage.reasoning_tokens = _int(_nested(reported, "completion_tokens_details", "reasoning_tokens"),
                                  usage.reasoning_tokens)


def _merge_input_output(usage: Usage, reported: dict[str, Any]) -> None:
    # The responses API (input_tokens_details) and Anthropic (cache_*_input_tokens)
    # share the input/output names but count cached tokens differently.
    cache_read = _int(reported.get("cache_read_input_tokens"), None)
    cache_write = _int(reported.get("cache_creation_input_tokens"), None)
    input_tokens = _int(reported.get("input_tokens"), None)
    if input_tokens is not None:
        usage.prompt_tokens = input_tokens + (cache_read or 0) + (cache_write or 0)
    usage.completion_tokens = _int(reported.get("output_tokens"), usage.completion_tokens)
    cached = cache_read if cache_read is not None else _nested(reported, "input_tokens_details", "cached_tokens")
    usage.cached_tokens = _int(cached, usage.cached_tokens)
    usage.reasoning_tokens = _int(_nested(reported, "output_tokens_details", "reasoning_tokens"),
                                  usage.reasoning_tokens)
    total = _int(reported.get("total_tokens"), None)
    if total is None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    usage.total_tokens = total if total is not None else usage.total_tokens


def _nested(document: dict[str, Any], outer: str, inner: str) -> Any:
    details = document.get(outer)
    return details.get(inner) if isinstance(details, dict) else None


def _int(value: Any, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
