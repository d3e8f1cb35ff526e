"""Choosing the deployments a request tries, in order: weights, in-flight counts and passive health.

`Balancer.plan` lists the deployments of a route in the order its strategy
gives, then the deployments of each fallback alias. The `weighted` strategy
orders them by weighted random choice. The `least-busy` strategy puts the
fewest requests in flight first, and breaks ties by weight. A
deployment that failed `failures_before_cooldown` times in a row is left out
for `cooldown_seconds`. After that, one request at a time may try it again
(half-open), and a success brings it back.

All of this state is per worker process: each worker counts its own
in-flight requests and failures, so with N workers a failing deployment is
taken out by each worker after that worker saw the failures itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from weir.proxy.snapshot import Deployment, Route

logger = logging.getLogger(__name__)


class DeploymentState:
    """The state one worker keeps about one deployment."""

    __slots__ = ("in_flight", "failures", "down_until", "probing")

    def __init__(self) -> None:
        self.in_flight = 0
        self.failures = 0
        self.down_until = 0.0
        """Monotonic time until which the deployment is out; 0 while it is in rotation."""
        self.probing = False
        """True while the one half-open request after a cooldown is under way."""


class Balancer:
    """Per-worker routing state, keyed by deployment ID so that it survives snapshot reloads."""

    def __init__(self, failures_before_cooldown: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_before_cooldown = failures_before_cooldown
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._states: dict[int, DeploymentState] = {}

    def plan(self, route: Route, routes: Mapping[str, Route]) -> list[Deployment]:
        """Return the deployments to try, in order; each alias contributes at most its `max_attempts`.

        The route's own deployments come first, then those of each fallback
        alias in the order listed. A fallback's own fallbacks are not
        followed, so a cycle of fallbacks cannot loop.
        """
        now = self._clock()
        plan = self._available(route, now)
        for name in route.fallbacks:
            fallback = routes.get(name)
            if fallback is not None:
                seen = {deployment.id for deployment in plan}
                plan.extend(d for d in self._available(fallback, now) if d.id not in seen)
        return plan

    def seconds_until_available(self, route: Route) -> float:
        """Return how long until the first of the route's deployments leaves its cooldown."""
        now = self._clock()
        waits = [self._state(d).down_until - now for d in route.deployments]
        return max(0.0, min(waits, default=0.0))

    def started(self, deployment: Deployment) -> None:
        state = self._state(deployment)
        state.in_flight += 1
        if state.down_until:
            state.probing = True

    def finished(self, deployment: Deployment, succeeded: bool | None) -> None:
        """Record the end of an attempt; None (a cancelled request) counts neither way."""
        state = self._state(deployment)
        state.in_flight -= 1
        if succeeded is None:
            state.probing = False
        elif succeeded:
            if state.down_until:
                logger.info("Deployment %s succeeded after its cooldown; it is back in rotation", deployment.label)
            state.failures, state.down_until, state.probing = 0, 0.0, False
        else:
            self._failed(deployment, state)

    def in_flight(self, deployment: Deployment) -> int:
        return self._state(deployment).in_flight

    def _available(self, route: Route, now: float) -> list[Deployment]:
        order = route.attempt_order()
        if route.strategy == "least-busy":
            order.sort(key=self.in_flight)  # stable: equal counts keep their weighted order
        available = [d for d in order if self._is_available(d, now)]
        return available[:route.max_attempts]

    def _is_available(self, deployment: Deployment, now: float) -> bool:
        state = self._states.get(deployment.id)
        if state is None or not state.down_until:
            return True
        return now >= state.down_until and not state.probing

    def _failed(self, deployment: Deployment, state: DeploymentState) -> None:
        state.failures += 1
        state.probing = False
        if state.failures >= self.failures_before_cooldown:
            if not state.down_until:
                logger.warning("Deployment %s failed %d times in a row; taking it out for %.0f s",
                               deployment.label, state.failures, self.cooldown_seconds)
            state.down_until = self._clock() + self.cooldown_seconds

    def _state(self, deployment: Deployment) -> DeploymentState:
        state = self._states.get(deployment.id)
        if state is None:
            state = self._states[deployment.id] = DeploymentState()
        return state
