"""The order deployments are tried in: weights, in-flight counts, cooldowns and fallbacks."""

from __future__ import annotations

from collections import Counter

from weir.proxy.balancer import Balancer
from weir.proxy.snapshot import Deployment, Provider, Route

PROVIDER = Provider(id=1, name="p", kind="openai-compatible", base_url="http://127.0.0.1:9/v1", credential=None,
                    headers=(), api_version=None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_deployment(id: int, weight: int = 1) -> Deployment:
    return Deployment(id=id, provider=PROVIDER, upstream_model=f"m{id}", weight=weight, timeout_seconds=1,
                      connect_timeout_seconds=1)


def make_route(alias: str, *deployments: Deployment, strategy: str = "weighted", fallbacks: tuple[str, ...] = (),
               max_attempts: int = 3) -> Route:
    return Route(alias=alias, deployments=deployments, strategy=strategy, fallbacks=fallbacks,
                 max_attempts=max_attempts, retry_on=frozenset({429, 500, 502, 503, 504}), log_bodies=None)


def labels(plan: list[Deployment]) -> list[str]:
    return [deployment.upstream_model for deployment in plan]


def test_weighted_plan_follows_weights() -> None:
    route = make_route("chat", make_deployment(1, weight=3), make_deployment(2, weight=1))
    balancer = Balancer(3, 30)

    firsts = Counter(balancer.plan(route, {})[0].id for _ in range(4000))

    assert 0.70 < firsts[1] / 4000 < 0.80
    assert sorted(labels(balancer.plan(route, {}))) == ["m1", "m2"]


def test_least_busy_prefers_fewest_in_flight() -> None:
    first, second = make_deployment(1, weight=1000), make_deployment(2, weight=1)
    route = make_route("chat", first, second, strategy="least-busy")
    balancer = Balancer(3, 30)
    balancer.started(first)
    balancer.started(first)

    assert labels(balancer.plan(route, {})) == ["m2", "m1"]

    balancer.finished(first, True)
    balancer.finished(first, True)
    balancer.started(second)
    assert labels(balancer.plan(route, {})) == ["m1", "m2"]


def test_repeated_failures_take_deployment_out() -> None:
    flaky, steady = make_deployment(1), make_deployment(2)
    route = make_route("chat", flaky, steady)
    balancer = Balancer(3, 30, clock=Clock())

    for _ in range(2):
        balancer.started(flaky)
        balancer.finished(flaky, False)
    assert "m1" in labels(balancer.plan(route, {}))

    balancer.started(flaky)
    balancer.finished(flaky, False)
    assert labels(balancer.plan(route, {})) == ["m2"]


def test_success_resets_failure_count() -> None:
    flaky = make_deployment(1)
    route = make_route("chat", flaky)
    balancer = Balancer(3, 30, clock=Clock())

    for succeeded in (False, False, True, False, False):
        balancer.started(flaky)
        balancer.finished(flaky, succeeded)

    assert labels(balancer.plan(route, {})) == ["m1"]


def test_cooldown_ends_with_one_probe() -> None:
    clock = Clock()
    flaky = make_deployment(1)
    route = make_route("chat", flaky)
    balancer = Balancer(1, 30, clock=clock)
    balancer.started(flaky)
    balancer.finished(flaky, False)
    assert balancer.plan(route, {}) == []
    assert balancer.seconds_until_available(route) == 30

    clock.now += 30
    assert labels(balancer.plan(route, {})) == ["m1"]
    balancer.started(flaky)
    assert balancer.plan(route, {}) == []  # one probe at a time

    balancer.finished(flaky, True)
    assert labels(balancer.plan(route, {})) == ["m1"]


def test_failed_probe_starts_new_cooldown() -> None:
    clock = Clock()
    flaky = make_deployment(1)
    route = make_route("chat", flaky)
    balancer = Balancer(1, 30, clock=clock)
    balancer.started(flaky)
    balancer.finished(flaky, False)

    clock.now += 31
    balancer.started(flaky)
    balancer.finished(flaky, False)

    assert balancer.plan(route, {}) == []
    assert balancer.seconds_until_available(route) == 30


def test_cancelled_attempt_counts_neither_way() -> None:
    flaky = make_deployment(1)
    route = make_route("chat", flaky)
    balancer = Balancer(1, 30, clock=Clock())

    balancer.started(flaky)
    balancer.finished(flaky, None)

    assert labels(balancer.plan(route, {})) == ["m1"]
    assert balancer.in_flight(flaky) == 0


def test_fallbacks_follow_own_deployments() -> None:
    own = make_route("chat", make_deployment(1), make_deployment(2), fallbacks=("spare", "missing"))
    spare = make_route("spare", make_deployment(3), fallbacks=("chat",))

    plan = Balancer(3, 30).plan(own, {"chat": own, "spare": spare})

    assert sorted(labels(plan[:2])) == ["m1", "m2"]
    assert labels(plan[2:]) == ["m3"]


def test_max_attempts_limits_each_alias() -> None:
    own = make_route("chat", *(make_deployment(i) for i in range(1, 5)), fallbacks=("spare",), max_attempts=2)
    spare = make_route("spare", make_deployment(5), make_deployment(6), max_attempts=1)

    plan = Balancer(3, 30).plan(own, {"chat": own, "spare": spare})

    assert len(plan) == 3
    assert labels(plan[2:]) in (["m5"], ["m6"])


def test_fallback_skips_shared_deployment() -> None:
    shared = make_deployment(1)
    own = make_route("chat", shared, fallbacks=("spare",))
    spare = make_route("spare", shared, make_deployment(2))

    assert labels(Balancer(3, 30).plan(own, {"spare": spare})) == ["m1", "m2"]
