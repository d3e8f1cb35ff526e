"""Retries and fallbacks through a real gateway: which faults move a request on, and which do not."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable

import pytest

from tests.proxy.faults import (Setup, deployment, logged, raw_upstream, routing_spec, second_upstream, served_by,
                                start_worker)
from tests.raw_upstream import RESET, RawReply, RawUpstream, closed_port
from tests.upstream import Reply, ScriptedUpstream, chat_completion
from weir.proxy.attempts import BACKOFF_MAX_SECONDS, backoff_seconds

__all__ = ["raw_upstream", "second_upstream", "start_worker"]  # fixtures used below

CHAT = {"model": "chat"}


def two_deployments(start_worker: Callable[..., Setup], first_url: str, second_url: str,
                    **model: object) -> Setup:
    spec = routing_spec({"first": first_url, "second": second_url}, [{
        "alias": "chat", "deployments": [deployment("first", weight=1000000), deployment("second", weight=1)],
        **model,
    }])
    return start_worker(spec)


def test_refused_connection_moves_to_next_deployment(start_worker, upstream: ScriptedUpstream) -> None:
    setup = two_deployments(start_worker, f"http://127.0.0.1:{closed_port()}/v1", upstream.base_url)

    response = setup.post(CHAT)

    assert response.status_code == 200
    assert served_by(response) == "second/m"
    assert len(upstream.requests) == 1
    assert logged(setup.gateway, "first/m=connect_error/-,second/m=answered/200")


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_moves_to_next_deployment(start_worker, upstream: ScriptedUpstream,
                                                   second_upstream: ScriptedUpstream, status: int) -> None:
    upstream.script(Reply.json({"error": {"message": "busy"}}, status=status))
    second_upstream.script(Reply.json(chat_completion("from second")))
    setup = two_deployments(start_worker, upstream.base_url, second_upstream.base_url)

    response = setup.post(CHAT)

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from second"
    assert served_by(response) == "second/m"
    assert len(upstream.requests) == 1


def test_status_outside_retry_on_is_returned(start_worker, upstream: ScriptedUpstream,
                                             second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.json({"error": {"message": "bad request from upstream"}}, status=400))
    setup = two_deployments(start_worker, upstream.base_url, second_upstream.base_url)

    response = setup.post(CHAT)

    assert response.status_code == 400
    assert response.json() == {"error": {"message": "bad request from upstream"}}
    assert second_upstream.requests == []


def test_last_deployment_error_reaches_client_unchanged(start_worker, upstream: ScriptedUpstream,
                                                        second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.json({"error": {"message": "first down"}}, status=503))
    second_upstream.script(Reply.json({"error": {"message": "second overloaded"}}, status=500))
    setup = two_deployments(start_worker, upstream.base_url, second_upstream.base_url)

    response = setup.post(CHAT)

    assert response.status_code == 500
    assert response.json() == {"error": {"message": "second overloaded"}}
    assert served_by(response) == "second/m"


def test_timeout_before_first_byte_moves_on(start_worker, raw_upstream: RawUpstream,
                                            upstream: ScriptedUpstream) -> None:
    raw_upstream.script(RawReply(head_delay=5, chunks=[b"late"]))
    spec = routing_spec({"slow": raw_upstream.base_url, "fast": upstream.base_url}, [{
        "alias": "chat", "deployments": [deployment("slow", weight=1000, timeout=0.5), deployment("fast", weight=1)],
    }])
    setup = start_worker(spec)

    response = setup.post(CHAT)

    assert response.status_code == 200
    assert served_by(response) == "fast/m"
    assert logged(setup.gateway, "slow/m=timeout/-")


def test_reset_before_answer_moves_on(start_worker, raw_upstream: RawUpstream, upstream: ScriptedUpstream) -> None:
    raw_upstream.script(RawReply(answer=False, end=RESET))
    setup = two_deployments(start_worker, raw_upstream.base_url, upstream.base_url)

    response = setup.post(CHAT)

    assert response.status_code == 200
    assert served_by(response) == "second/m"
    assert len(raw_upstream.connections) == 1


def test_max_attempts_one_never_retries(start_worker, upstream: ScriptedUpstream,
                                        second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.json({"error": {"message": "down"}}, status=503))
    setup = two_deployments(start_worker, upstream.base_url, second_upstream.base_url, max_attempts=1)

    response = setup.post(CHAT)

    assert response.status_code == 503
    assert second_upstream.requests == []


def test_every_deployment_refused_gives_502(start_worker) -> None:
    setup = two_deployments(start_worker, f"http://127.0.0.1:{closed_port()}/v1",
                            f"http://127.0.0.1:{closed_port()}/v1")

    response = setup.post(CHAT)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert logged(setup.gateway, "first/m=connect_error/-,second/m=connect_error/-")


def test_fallback_alias_is_tried_after_own_deployments(start_worker, upstream: ScriptedUpstream,
                                                       second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.json({"error": {"message": "down"}}, status=502))
    second_upstream.script(Reply.json(chat_completion("from the fallback")))
    spec = routing_spec({"main": upstream.base_url, "backup": second_upstream.base_url}, [
        {"alias": "chat", "deployments": [deployment("main", "a"), deployment("main", "b")],
         "fallbacks": ["spare"]},
        {"alias": "spare", "deployments": [deployment("backup", "c")], "fallbacks": ["chat"]},
    ])
    setup = start_worker(spec)

    response = setup.post(CHAT)

    assert response.status_code == 200
    assert served_by(response) == "backup/c"
    assert sorted(request.json()["model"] for request in upstream.requests) == ["a", "b"]
    assert second_upstream.requests[0].json()["model"] == "c"


def test_retry_waits_a_short_backoff(start_worker, upstream: ScriptedUpstream,
                                     second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply.json({"error": {"message": "down"}}, status=503))
    setup = two_deployments(start_worker, upstream.base_url, second_upstream.base_url)

    setup.post(CHAT)

    pause = second_upstream.requests[0].received_at - upstream.requests[0].received_at
    assert pause >= 0.025  # at least half of the first 50 ms step
    assert pause < 2


def test_backoff_is_jittered_and_bounded() -> None:
    pauses = [backoff_seconds(retry) for retry in range(1, 12) for _ in range(20)]

    assert max(pauses) <= BACKOFF_MAX_SECONDS
    assert min(pauses) >= 0.025
    assert len(set(pauses)) > 100


def test_cooling_off_alias_answers_503_at_once(start_worker, raw_upstream: RawUpstream) -> None:
    raw_upstream.script(RawReply(answer=False, end=RESET))
    spec = routing_spec({"flaky": raw_upstream.base_url}, [{"alias": "chat", "deployments": [deployment("flaky")]}])
    setup = start_worker(spec, failures_before_cooldown=3, cooldown_seconds=60)
    for _ in range(3):
        assert setup.post(CHAT).status_code == 502

    started = time.monotonic()
    response = setup.post(CHAT)

    assert time.monotonic() - started < 1
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "deployments_unavailable"
    assert "'chat'" in error["message"]
    assert "failed repeatedly" in error["message"]
    assert len(raw_upstream.connections) == 3


def test_failing_deployment_is_skipped_then_tried_again(start_worker, raw_upstream: RawUpstream,
                                                        upstream: ScriptedUpstream) -> None:
    raw_upstream.script(RawReply(answer=False, end=RESET))
    setup = start_worker(routing_spec({"flaky": raw_upstream.base_url, "steady": upstream.base_url}, [{
        "alias": "chat", "deployments": [deployment("flaky", weight=1000000), deployment("steady", weight=1)],
    }]), failures_before_cooldown=3, cooldown_seconds=1.5)
    for _ in range(3):
        assert served_by(setup.post(CHAT)) == "steady/m"
    assert len(raw_upstream.connections) == 3

    for _ in range(5):
        assert served_by(setup.post(CHAT)) == "steady/m"
    assert len(raw_upstream.connections) == 3  # out of rotation: not even tried

    time.sleep(1.6)
    raw_upstream.script(RawReply(headers={"content-type": "application/json"}, chunks=[b"{}"]))
    response = setup.post(CHAT)
    assert served_by(response) == "flaky/m"
    assert len(raw_upstream.connections) == 4


def test_least_busy_avoids_deployment_in_flight(start_worker, upstream: ScriptedUpstream,
                                                second_upstream: ScriptedUpstream) -> None:
    upstream.script(Reply(body=b"{}", delay=1.5))
    spec = routing_spec({"first": upstream.base_url, "second": second_upstream.base_url}, [{
        "alias": "chat", "strategy": "least-busy",
        "deployments": [deployment("first", weight=1000000), deployment("second", weight=1)],
    }])
    setup = start_worker(spec)

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(setup.post, CHAT)
        while not upstream.requests:
            time.sleep(0.01)
        quick = setup.post(CHAT)

    assert served_by(slow.result()) == "first/m"
    assert served_by(quick) == "second/m"
