"""Sending one request to the deployments of its plan until one returns a final response.

A connect error, a timeout before the response headers, or a status in the
route's `retry_on` moves the request on to the next deployment, after a
short jittered backoff. Every try is recorded as an `Attempt` for the
request log. Retries end as soon as a response is handed on for relaying:
once a byte has gone to the client, what the upstream does next is what the
client sees.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from weir.errors import UpstreamConnectError, UpstreamTimeout
from weir.proxy import errors
from weir.proxy.balancer import Balancer
from weir.proxy.errors import ProxyError
from weir.proxy.snapshot import Deployment, Route
from weir.proxy.upstream import UpstreamResponse

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 0.5


class Attempt:
    """One try of one deployment, as the request log records it."""

    __slots__ = ("deployment", "outcome", "status", "duration", "_started")

    def __init__(self, deployment: str) -> None:
        self._started = time.perf_counter()
        self.deployment = deployment
        self.outcome = "pending"
        """One of: answered (its response went to the client), retried (its status was in `retry_on`),
        connect_error, timeout, broken (the stream stopped midway), idle_timeout, cancelled (the client
        went away), error (the gateway failed)."""
        self.status: int | None = None
        self.duration = 0.0
        """Seconds from sending the request to the end of this attempt (for `answered`, the end of the body)."""

    def end(self, outcome: str) -> None:
        self.outcome = outcome
        self.duration = time.perf_counter() - self._started

    def __repr__(self) -> str:
        return f"Attempt({self.deployment!r}, {self.outcome}, status={self.status}, {self.duration:.3f}s)"


Send = Callable[[Deployment], Awaitable[UpstreamResponse]]


async def forward(balancer: Balancer, route: Route, plan: list[Deployment], send: Send,
                  attempts: list[Attempt]) -> tuple[UpstreamResponse, Deployment]:
    """Try the deployments of `plan` in turn with `send`; return the first final response and its deployment.

    The deployment of the returned response stays counted as in flight: the
    caller reports its end to `balancer.finished` once the body is relayed.
    The last deployment's response is returned whatever its status.
    """
    failure: ProxyError | None = None
    for number, deployment in enumerate(plan, start=1):
        if number > 1:
            await asyncio.sleep(backoff_seconds(number - 1))
        attempt = Attempt(deployment.label)
        attempts.append(attempt)
        response, failure = await _try(balancer, route, deployment, send, attempt, number == len(plan))
        if response is not None:
            return response, deployment
        logger.warning("Attempt %d of %d for alias %s on %s failed: %s", number, len(plan), route.alias,
                       deployment.label, attempt.outcome if attempt.status is None else attempt.status)

    raise failure or errors.upstream_unreachable(route.alias)


def backoff_seconds(retry: int) -> float:
    """Return the pause before retry number `retry` (1-based): doubling from 50 ms, at most 0.5 s, jittered."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** (retry - 1))
    return ceiling * random.uniform(0.5, 1.0)


async def _try(balancer: Balancer, route: Route, deployment: Deployment, send: Send, attempt: Attempt,
               last: bool) -> tuple[UpstreamResponse | None, ProxyError | None]:
    balancer.started(deployment)
    try:
        response = await send(deployment)
    except UpstreamConnectError:
        attempt.end("connect_error")
        failure: ProxyError | None = errors.upstream_unreachable(route.alias)
    except UpstreamTimeout:
        attempt.end("timeout")
        failure = errors.upstream_timeout(route.alias)
    except BaseException as error:
        # Cancelled because the client left, or a bug: not the deployment's failure.
        attempt.end("cancelled" if isinstance(error, asyncio.CancelledError) else "error")
        balancer.finished(deployment, None)
        raise
    else:
        attempt.status = response.status
        if last or response.status not in route.retry_on:
            attempt.end("answered")
            return response, None
        response.close()
        attempt.end("retried")
        failure = None
    balancer.finished(deployment, False)
    return None, failure
