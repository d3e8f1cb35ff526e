"""The proxy end to end: the official OpenAI SDK and httpx against a real gateway and upstream."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.waiting import wait_until
from tests.proxy.conftest import Proxy
from tests.upstream import Reply, chat_chunk, chat_completion
from weir.storage.database import connect
from weir.storage.virtual_keys import revoke_key


def test_chat_completion_reaches_upstream_and_returns_answer(proxy: Proxy) -> None:
    proxy.upstream.script(Reply.json(chat_completion("Paris")))

    completion = proxy.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Capital of France?"}]
    )

    assert completion.choices[0].message.content == "Paris"
    assert completion.usage is not None and completion.usage.total_tokens == 7
    sent = proxy.upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json()["model"] == "upstream-model"
    assert sent.json()["messages"] == [{"role": "user", "content": "Capital of France?"}]


def test_streamed_chunks_arrive_one_by_one(proxy: Proxy) -> None:
    words = ["one", " two", " three", " four", " five"]
    proxy.upstream.script(Reply.sse([chat_chunk(word) for word in words], chunk_delay=0.2))

    stream = proxy.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "count"}], stream=True
    )
    arrivals, pieces = [], []
    for chunk in stream:
        arrivals.append(time.monotonic())
        pieces.append(chunk.choices[0].delta.content)

    assert pieces == words
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    # The upstream waits 0.2 s between chunks: a buffering proxy would deliver
    # them together at the end, with gaps near zero.
    assert min(gaps) > 0.1


def test_stream_ends_with_the_upstream_done_marker(proxy: Proxy) -> None:
    proxy.upstream.script(Reply.sse([chat_chunk("a")]))

    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json={"model": "chat", "stream": True},
                      headers={"Authorization": f"Bearer {proxy.keys['alice']}"}) as response:
        text = response.read().decode()

    assert response.headers["content-type"].startswith("text/event-stream")
    assert text.endswith("data: [DONE]\n\n")
    assert text.count("data: ") == 2


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/audio/speech",
                                  "/v1/messages"])
def test_other_model_routes_are_forwarded(proxy: Proxy, path: str) -> None:
    proxy.upstream.script(Reply.json({"ok": True}))

    response = httpx.post(f"{proxy.url}{path}?trace=1", json={"model": "same", "input": "x"},
                          headers={"Authorization": f"Bearer {proxy.keys['alice']}"})

    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert proxy.upstream.requests[-1].path == path
    assert proxy.upstream.requests[-1].query == "trace=1"


def test_text_completion_through_sdk(proxy: Proxy) -> None:
    proxy.upstream.script(Reply.json({
        "id": "cmpl-1", "object": "text_completion", "created": 1, "model": "upstream-model",
        "choices": [{"index": 0, "text": " world", "finish_reason": "stop", "logprobs": None}],
    }))

    completion = proxy.client().completions.create(model="chat", prompt="hello")

    assert completion.choices[0].text == " world"
    assert proxy.upstream.requests[-1].json()["prompt"] == "hello"


def test_body_forwarded_byte_for_byte(proxy: Proxy) -> None:
    body = b'{ "model" : "same",\n "messages": [], "temperature": 0.50, "extra": {"k": [1, 2.0]} }'

    httpx.post(f"{proxy.url}/v1/chat/completions", content=body,
               headers={"Authorization": f"Bearer {proxy.keys['alice']}", "content-type": "application/json"})

    assert proxy.upstream.requests[-1].body == body


def test_rewrite_changes_only_the_model_value(proxy: Proxy) -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}], "model": "chat", "temperature": 0.50}'

    httpx.post(f"{proxy.url}/v1/chat/completions", content=body,
               headers={"Authorization": f"Bearer {proxy.keys['alice']}"})

    sent = proxy.upstream.requests[-1].body
    assert sent == b'{"messages":[{"role": "user", "content": "hi"}],"model":"upstream-model","temperature":0.50}'


def test_client_credentials_never_reach_upstream(proxy: Proxy) -> None:
    key = proxy.keys["alice"]

    httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "chat"},
               headers={"Authorization": f"Bearer {key}", "x-api-key": key, "Proxy-Authorization": "Basic eA==",
                        "Connection": "keep-alive, x-hop", "Keep-Alive": "timeout=5", "x-custom": "kept",
                        "Expect": "100-continue"})

    headers = proxy.upstream.requests[-1].headers
    assert "authorization" not in headers
    assert "x-api-key" not in headers
    assert "proxy-authorization" not in headers
    assert "keep-alive" not in headers
    assert "expect" not in headers
    assert headers["x-custom"] == "kept"
    assert key not in json.dumps(headers)


def test_provider_credential_is_sent_upstream(proxy: Proxy, gatewayctl) -> None:  # type: ignore[no-untyped-def]
    import os

    os.environ["SCRIPTED_CREDENTIAL"] = "sk-upstream-credential"
    gatewayctl("providers", "add", "with-credential", "--kind", "openai", "--base-url", proxy.upstream.base_url,
               "--credential-env", "SCRIPTED_CREDENTIAL")
    with connect(proxy.database_url) as connection:
        connection.execute("UPDATE deployments SET provider_id = (SELECT id FROM providers "
                           "WHERE name = 'with-credential')")
    wait_until(lambda: _status(proxy, "chat") == 200 and
                proxy.upstream.requests[-1].headers.get("authorization") == "Bearer sk-upstream-credential")

    assert proxy.upstream.requests[-1].headers["authorization"] == "Bearer sk-upstream-credential"


def test_models_list_shows_only_granted_aliases(proxy: Proxy) -> None:
    assert sorted(model.id for model in proxy.client("alice").models.list()) == ["chat", "same"]
    assert [model.id for model in proxy.client("bob").models.list()] == []


def test_model_retrieve_hides_ungranted_alias(proxy: Proxy) -> None:
    assert proxy.client("alice").models.retrieve("chat").id == "chat"
    with pytest.raises(openai.NotFoundError):
        proxy.client("alice").models.retrieve("hidden")


def test_response_names_request_and_deployment(proxy: Proxy) -> None:
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "chat"},
                          headers={"Authorization": f"Bearer {proxy.keys['alice']}"})

    assert len(response.headers["x-request-id"]) == 24
    assert response.headers["x-weir-deployment"] == "scripted/upstream-model"


def test_revoked_key_stops_working(proxy: Proxy) -> None:
    client = proxy.client("alice")
    client.models.list()
    with connect(proxy.database_url) as connection:
        revoke_key(connection, "1")

    wait_until(lambda: _status(proxy, "chat") == 401)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_health_endpoints_need_no_key(proxy: Proxy) -> None:
    assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{proxy.url}/readyz").json() == {"status": "ready", "database": "up"}


def _status(proxy: Proxy, alias: str) -> int:
    return httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": alias},
                      headers={"Authorization": f"Bearer {proxy.keys['alice']}"}).status_code
