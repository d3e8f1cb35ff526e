"""Per-worker request and token limits."""

from __future__ import annotations

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
