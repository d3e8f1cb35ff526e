"""Header and body hygiene of the upstream request, unit by unit and through a real gateway."""

from __future__ import annotations

import gzip
import json

import httpx
from backports.zstd import compress as zstd_compress

from tests.proxy.conftest import Proxy
from weir.proxy.routing import ClientRequest, build_upstream_request, forwardable_headers
from weir.proxy.snapshot import Deployment, Provider

PROVIDER = Provider(id=1, name="p", kind="openai-compatible", base_url="http://127.0.0.1:9/v1", credential=None,
                    headers=(), api_version=None)


def test_headers_named_by_connection_are_dropped() -> None:
    headers = forwardable_headers([
        ("connection", "keep-alive, X-Hop, x-other"), ("x-hop", "1"), ("x-other", "2"), ("x-kept", "3"),
        ("proxy-authorization", "Basic eA=="), ("te", "trailers"), ("upgrade", "h2c"), ("keep-alive", "5"),
    ])

    assert headers == [("x-kept", "3")]


def test_rewrite_of_compressed_body_sends_it_decoded() -> None:
    body = b'{"model": "chat", "n": 1}'
    request = ClientRequest(method="POST", path="/v1/chat/completions", query="",
                            headers=[("content-encoding", "gzip"), ("x-kept", "1")], body=gzip.compress(body),
                            decoded_body=body)
    deployment = Deployment(id=1, provider=PROVIDER, upstream_model="upstream", weight=1, timeout_seconds=1,
                            connect_timeout_seconds=1)

    upstream = build_upstream_request(deployment, "chat", request)

    assert json.loads(upstream.body) == {"model": "upstream", "n": 1}
    assert ("content-encoding", "gzip") not in upstream.headers
    assert ("x-kept", "1") in upstream.headers


def post_encoded(proxy: Proxy, body: bytes, encoding: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/chat/completions", content=body,
                      headers={"Authorization": f"Bearer {proxy.keys['alice']}", "content-encoding": encoding,
                               "content-type": "application/json"})


def test_gzip_body_is_forwarded_as_received(proxy: Proxy) -> None:
    plain = b'{"model": "same", "messages": []}'
    compressed = gzip.compress(plain)

    response = post_encoded(proxy, compressed, "gzip")

    assert response.status_code == 200
    sent = proxy.upstream.requests[-1]
    assert sent.headers["content-encoding"] == "gzip"
    assert int(sent.headers["content-length"]) == len(compressed)


def test_zstd_body_is_forwarded_as_received(proxy: Proxy) -> None:
    plain = b'{"model": "same", "messages": []}'
    compressed = zstd_compress(plain)

    response = post_encoded(proxy, compressed, "zstd")

    assert response.status_code == 200
    sent = proxy.upstream.requests[-1]
    assert sent.headers["content-encoding"] == "zstd"
    assert int(sent.headers["content-length"]) == len(compressed)


def test_compressed_body_rewrite_is_sent_plain(proxy: Proxy) -> None:
    plain = b'{"model": "chat", "messages": []}'

    response = post_encoded(proxy, gzip.compress(plain), "gzip")

    assert response.status_code == 200
    sent = proxy.upstream.requests[-1]
    assert "content-encoding" not in sent.headers
    assert json.loads(sent.body) == {"model": "upstream-model", "messages": []}
    assert int(sent.headers["content-length"]) == len(sent.body)


def test_unreadable_compressed_body_is_rejected(proxy: Proxy) -> None:
    response = post_encoded(proxy, b"not gzip at all", "gzip")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_body"
    assert proxy.upstream.requests == []


def test_connection_named_header_never_reaches_upstream(proxy: Proxy) -> None:
    httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "chat"},
               headers={"Authorization": f"Bearer {proxy.keys['alice']}", "Connection": "keep-alive, x-hop",
                        "x-hop": "secret-ish", "x-custom": "kept"})

    headers = proxy.upstream.requests[-1].headers
    assert "x-hop" not in headers
    assert headers["x-custom"] == "kept"


def test_content_length_matches_rewritten_body(proxy: Proxy) -> None:
    body = b'{"model": "chat", "messages": [{"role": "user", "content": "a longer prompt than the alias"}]}'

    httpx.post(f"{proxy.url}/v1/chat/completions", content=body,
               headers={"Authorization": f"Bearer {proxy.keys['alice']}", "content-length": str(len(body))})

    sent = proxy.upstream.requests[-1]
    assert int(sent.headers["content-length"]) == len(sent.body)
    assert len(sent.body) != len(body)
