"""Per-worker request and token limits."""

from __future__ import annotations

import json

import pytest

from tests.waiting import wait_until
from weir.proxy.limits import Limits, RateLimiter

KEY = ("virtual key", 1, Limits(requests_per_minute=3))


def test_requests_over_limit_are_refused() -> None:
    limiter = RateLimiter()

    results = [limiter.admit([KEY], now=100.0 + i) for i in range(4)]

    assert results[:3] == [None, None, None]
    refusal = results[3]
    assert refusal is not None
    assert refusal.resource == "requests"
    assert refusal.limit == 3
    assert refusal.retry_after == 57


def test_refused_request_is_not_counted_elsewhere() -> None:
    limiter = RateLimiter()
    user = ("user", 7, Limits(requests_per_minute=10))
    tight = ("virtual key", 1, Limits(requests_per_minute=1))

    assert limiter.admit([user, tight], now=0.0) is None
    assert limiter.admit([user, tight], now=1.0) is not None
    for second in range(2, 11):
        assert limiter.admit([user], now=float(second)) is None, second

    assert limiter.admit([user], now=11.0) is not None


def test_previous_window_fades_out() -> None:
    limiter = RateLimiter()
    for i in range(3):
        limiter.admit([KEY], now=float(i))

    assert limiter.admit([KEY], now=60.0) is not None  # the previous window still counts in full
    assert limiter.admit([KEY], now=110.0) is None  # a sixth of the previous window remains: 0.5 requests


def test_idle_subject_starts_fresh() -> None:
    limiter = RateLimiter()
    for i in range(3):
        limiter.admit([KEY], now=float(i))

    assert limiter.admit([KEY], now=500.0) is None


def test_tokens_over_budget_refuse_next_request() -> None:
    limiter = RateLimiter()
    alias = ("model alias", "chat", Limits(tokens_per_minute=1000))

    assert limiter.admit([alias], now=0.0) is None
    limiter.add_tokens([alias], 1200, now=1.0)
    refusal = limiter.admit([alias], now=2.0)

    assert refusal is not None
    assert refusal.resource == "tokens"
    assert refusal.subject == "model alias"


def test_unlimited_subjects_are_not_tracked() -> None:
    limiter = RateLimiter()
    free = ("user", 1, Limits())

    for i in range(1000):
        assert limiter.admit([free], now=float(i) / 100) is None
    limiter.add_tokens([free], 10**9, now=11.0)

    assert limiter.admit([free], now=12.0) is None


def test_limit_is_shared_among_workers() -> None:
    limiter = RateLimiter(share=2)
    key = ("virtual key", 1, Limits(requests_per_minute=4))

    assert limiter.admit([key], now=0.0) is None
    assert limiter.admit([key], now=0.1) is None
    assert limiter.admit([key], now=0.2) is not None


# Through the gateway: the limits that `gatewayctl` stores are enforced on the request path.

def test_key_over_request_limit_gets_429(proxy, gatewayctl) -> None:  # type: ignore[no-untyped-def]
    import httpx
    import openai

    result = gatewayctl("keys", "create", "--user", "alice", "--name", "limited", "--requests-per-minute", "2",
                        "--json")
    secret = json.loads(result.stdout)["key"]
    client = proxy.client(secret)
    wait_until(lambda: post_status(proxy, secret) == 200)  # the snapshot has the new key
    post_status(proxy, secret)

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="chat", messages=[])

    assert raised.value.code == "rate_limit_exceeded"
    response = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "chat"},
                          headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "virtual key is over its limit of 2 requests per minute" in response.json()["error"]["message"]
    assert post_status(proxy, proxy.keys["alice"]) == 200  # another key of the same user is not limited


def test_user_over_token_limit_gets_429(proxy, gatewayctl) -> None:  # type: ignore[no-untyped-def]
    gatewayctl("users", "update", "alice", "--tokens-per-minute", "10")
    key = proxy.keys["alice"]
    wait_until(lambda: post_status(proxy, key) == 200)

    # The scripted upstream reports 7 tokens per response; the writer counts them within about a second.
    statuses = []
    wait_until(lambda: statuses.append(post_status(proxy, key)) or statuses[-1] == 429, timeout=10, interval=0.2)

    assert statuses.count(200) >= 2
    assert statuses[-1] == 429


def test_token_limit_holds_without_request_logs(proxy, gatewayctl) -> None:  # type: ignore[no-untyped-def]
    from weir.storage.database import connect

    with connect(proxy.database_url) as connection:
        connection.execute("UPDATE aliases SET log_bodies = 'none' WHERE name = 'chat'")
    gatewayctl("users", "update", "alice", "--tokens-per-minute", "10")
    key = proxy.keys["alice"]
    wait_until(lambda: post_status(proxy, key) == 200)

    statuses = []
    wait_until(lambda: statuses.append(post_status(proxy, key)) or statuses[-1] == 429, timeout=10, interval=0.2)

    assert statuses[-1] == 429
    with connect(proxy.database_url) as connection:
        logged = connection.execute("SELECT count(*) AS n FROM request_logs WHERE alias = 'chat'").fetchone()
    assert logged["n"] == 0


def post_status(proxy, key: str) -> int:  # type: ignore[no-untyped-def]
    import httpx

    return httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "chat"},
                      headers={"Authorization": f"Bearer {key}"}).status_code
