"""Reading `model` and `stream` from bodies, and rewriting `model` without touching the rest."""

from __future__ import annotations

import json

import pytest

from weir.proxy.body import read_head, replace_model
from weir.proxy.errors import ProxyError


def test_head_reads_model_and_stream() -> None:
    head = read_head(b'{"messages": [{"content": "x"}], "model": "chat", "stream": true}')

    assert head.model == "chat"
    assert head.stream is True


@pytest.mark.parametrize(("body", "message"), [
    (b"{", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (b"{}", "has no `model`"),
    (b'{"model": ["a"]}', "must be a string"),
])
def test_bad_head_raises_400(body: bytes, message: str) -> None:
    with pytest.raises(ProxyError) as raised:
        read_head(body)

    assert raised.value.status == 400
    assert message in raised.value.message


def test_replace_model_keeps_other_values_raw() -> None:
    body = b'{"model": "alias", "temperature": 0.50, "text": "caf\\u00e9", "n": 1e2}'

    rewritten = replace_model(body, "upstream/name")

    assert rewritten == b'{"model":"upstream/name","temperature":0.50,"text":"caf\\u00e9","n":1e2}'
    assert json.loads(rewritten)["text"] == "café"
