"""Requests-per-minute and tokens-per-minute limits, counted in memory by each worker.

Each limited subject (a virtual key, a user or an alias) has two fixed
one-minute windows: the current one and the one before. The count used for a
decision weights the previous window by how much of it still overlaps the
last sixty seconds, which approximates a sliding window at the cost of two
integers per subject.

Requests are counted when they are admitted. Tokens are only known once the
upstream response has been read, so they are added afterwards, and a subject
over its token budget is rejected from its next request on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one subject; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


Subject = tuple[str, "int | str", Limits]
"""A limited subject: its kind ("virtual key", "user" or "model alias"), its ID or name, and its limits."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """The limit a request is over, and the seconds until the client may retry."""

    subject: str
    """The kind of limited subject: "virtual key", "user" or "model alias"."""
    resource: str
    """"requests" or "tokens"."""
    limit: int
    retry_after: int


class _Window:
    __slots__ = ("start", "requests", "tokens", "previous_requests", "previous_tokens")

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = 0
        self.tokens = 0
        self.previous_requests = 0
        self.previous_tokens = 0

    def advance(self, now: float) -> float:
        """Roll the windows forward to `now`; return the share of the previous window still counted."""
        elapsed = now - self.start
        if elapsed >= WINDOW_SECONDS:
            windows = int(elapsed // WINDOW_SECONDS)
            self.previous_requests = self.requests if windows == 1 else 0
            self.previous_tokens = self.tokens if windows == 1 else 0
            self.requests = self.tokens = 0
            self.start += windows * WINDOW_SECONDS
            elapsed = now - self.start
        return 1.0 - elapsed / WINDOW_SECONDS


class RateLimiter:
    """Counts requests and tokens per subject and decides whether a request may go on.

    The counters live in one worker process. `share` divides every limit
    among the workers of one `gatewayctl serve`, assuming the kernel spreads
    connections evenly across them.
    """

    # NOTE: limits hold per replica: two replicas on one database admit up to
    # twice the configured rate, because the counters are not shared.

    def __init__(self, share: int = 1) -> None:
        self._share = max(share, 1)
        self._windows: dict[tuple[str, int | str], _Window] = {}

    def admit(self, subjects: tuple[Subject, ...] | list[Subject], now: float) -> Refusal | None:
        """Count one request for every subject, unless one of them is over a limit."""
        for kind, identity, limits in subjects:
            refusal = self._check(kind, identity, limits, now)
            if refusal is not None:
                return refusal
        for kind, identity, limits in subjects:
            if limits.requests_per_minute is not None or limits.tokens_per_minute is not None:
                self._window(kind, identity, now).requests += 1
        return None

    def add_tokens(self, subjects: tuple[Subject, ...] | list[Subject], tokens: int, now: float) -> None:
        """Add the tokens a finished request used to each subject that has a token limit."""
        for kind, identity, limits in subjects:
            if limits.tokens_per_minute is not None:
                window = self._window(kind, identity, now)
                window.advance(now)
                window.tokens += tokens

    def _check(self, kind: str, identity: int | str, limits: Limits, now: float) -> Refusal | None:
        if limits.requests_per_minute is None and limits.tokens_per_minute is None:
            return None
        window = self._window(kind, identity, now)
        overlap = window.advance(now)
        retry_after = max(1, math.ceil(window.start + WINDOW_SECONDS - now))

        if limits.requests_per_minute is not None:
            allowed = self._allowed(limits.requests_per_minute)
            if window.previous_requests * overlap + window.requests >= allowed:
                return Refusal(kind, "requests", limits.requests_per_minute, retry_after)
        if limits.tokens_per_minute is not None:
            allowed = self._allowed(limits.tokens_per_minute)
            if window.previous_tokens * overlap + window.tokens >= allowed:
                return Refusal(kind, "tokens", limits.tokens_per_minute, retry_after)
        return None

    def _allowed(self, limit: int) -> float:
        return max(limit / self._share, 1.0)

    def _window(self, kind: str, identity: int | str, now: float) -> _Window:
        key = (kind, identity)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(now)
        return window
