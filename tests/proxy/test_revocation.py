"""Revocation reaches every worker of every replica within one second.

Two `gatewayctl serve` processes with two workers each share one database.
For each kind of change, the test commits it, then polls both replicas in
rounds of fresh connections (so that both workers of a replica respond) until
every request of a round is rejected. The delay of a change is the end of the
first fully rejected round on the slower replica, minus the commit time: an
upper bound on the true delay. Median and worst per kind are printed.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import psycopg

from tests.conftest import seed
from tests.gateway import GatewayProcess
from tests.upstream import ScriptedUpstream
from weir.config.spec import GatewaySpec
from weir.crypto import CredentialBox
from weir.storage.database import connect
from weir.storage.groups import revoke_alias
from weir.storage.providers import ProviderFields, update_provider
from weir.storage.users import delete_user
from weir.storage.virtual_keys import revoke_key

RUNS = 5
REQUESTS_PER_ROUND = 20  # per replica, each on a new connection
DEADLINE_SECONDS = 5.0  # polling gives up here; the requirement is one second


def _revoke_key(connection: psycopg.Connection[Any], number: int, prefix: str) -> None:
    revoke_key(connection, prefix)


def _delete_user(connection: psycopg.Connection[Any], number: int, prefix: str) -> None:
    delete_user(connection, f"user-{number}")


def _remove_grant(connection: psycopg.Connection[Any], number: int, prefix: str) -> None:
    revoke_alias(connection, f"group-{number}", f"alias-{number}")


def _expire_key(connection: psycopg.Connection[Any], number: int, prefix: str) -> None:
    connection.execute("UPDATE virtual_keys SET expires_at = now() WHERE prefix = %s", (prefix,))


def _disable_provider(connection: psycopg.Connection[Any], number: int, prefix: str) -> None:
    update_provider(connection, f"provider-{number}", ProviderFields(enabled=False))


Change = Callable[[psycopg.Connection[Any], int, str], None]

# Each kind of change and the statuses that show it took effect.
CHANGES: dict[str, tuple[Change, set[int]]] = {
    "revoke key": (_revoke_key, {401}),
    "delete user": (_delete_user, {401}),
    "remove grant": (_remove_grant, {404}),
    "expire key": (_expire_key, {401}),
    "disable provider": (_disable_provider, {503}),
}


def isolated_spec(upstream_url: str, count: int) -> GatewaySpec:
    """`count` independent sets of provider, alias, group and user, so each change touches only its own."""
    return msgspec.convert({
        "providers": [{"name": f"provider-{n}", "kind": "openai-compatible", "base_url": upstream_url}
                      for n in range(count)],
        "models": [{"alias": f"alias-{n}", "deployments": [{"provider": f"provider-{n}", "model": "m"}]}
                   for n in range(count)],
        "groups": [{"name": f"group-{n}", "aliases": [f"alias-{n}"]} for n in range(count)],
        "users": [{"name": f"user-{n}", "groups": [f"group-{n}"]} for n in range(count)],
    }, GatewaySpec)


async def poll_round(client: httpx.AsyncClient, replicas: list[GatewayProcess], key: str,
                     alias: str) -> list[list[int]]:
    """Send one round of requests to every replica at once; return the statuses per replica."""
    async def send(replica: GatewayProcess) -> int:
        response = await client.post(f"{replica.base_url}/v1/chat/completions",
                                     json={"model": alias, "messages": []},
                                     headers={"Authorization": f"Bearer {key}"})
        return response.status_code

    statuses = await asyncio.gather(*(send(r) for r in replicas for _ in range(REQUESTS_PER_ROUND)))
    return [statuses[i:i + REQUESTS_PER_ROUND] for i in range(0, len(statuses), REQUESTS_PER_ROUND)]


async def measure_change(database_url: str, replicas: list[GatewayProcess], kind: str, number: int,
                         key: str, round_times: list[float]) -> float:
    """Commit one change and return seconds until both replicas reject every request for it.

    The duration of each polling round is appended to `round_times`: it is
    the resolution of the measurement.
    """
    change, rejected = CHANGES[kind]
    alias = f"alias-{number}"
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request reaches both workers
    async with httpx.AsyncClient(limits=limits, timeout=5) as client:
        for statuses in await poll_round(client, replicas, key, alias):
            assert set(statuses) == {200}, f"{kind}: requests failed before the change: {statuses}"

        with connect(database_url) as connection:
            change(connection, number, key[:12])
        committed = time.monotonic()

        done: dict[int, float] = {}
        while len(done) < len(replicas) and time.monotonic() - committed < DEADLINE_SECONDS:
            started = time.monotonic()
            rounds = await poll_round(client, replicas, key, alias)
            ended = time.monotonic()
            round_times.append(ended - started)
            for index, statuses in enumerate(rounds):
                if index not in done and set(statuses) <= rejected:
                    done[index] = ended - committed
    assert len(done) == len(replicas), f"{kind}: still accepted after {DEADLINE_SECONDS} s"
    return max(done.values())


def test_changes_reach_both_replicas_within_a_second(database_url: str, credential_box: CredentialBox,
                                                     upstream: ScriptedUpstream,
                                                     start_gateway: Callable[..., GatewayProcess]) -> None:
    count = RUNS * len(CHANGES)
    keys = seed(database_url, credential_box, isolated_spec(upstream.base_url, count),
                {f"key-{n}": f"user-{n}" for n in range(count)})
    replicas = [start_gateway(workers=2), start_gateway(workers=2)]

    delays: dict[str, list[float]] = {kind: [] for kind in CHANGES}
    round_times: list[float] = []
    for number in range(count):
        kind = list(CHANGES)[number % len(CHANGES)]
        delay = asyncio.run(measure_change(database_url, replicas, kind, number, keys[f"key-{number}"],
                                           round_times))
        delays[kind].append(delay)

    for kind, values in delays.items():
        print(f"{kind}: median {statistics.median(values) * 1000:.0f} ms, worst {max(values) * 1000:.0f} ms "
              f"over {len(values)} runs (2 replicas x 2 workers)")
    print(f"one polling round ({2 * REQUESTS_PER_ROUND} requests) took {statistics.median(round_times) * 1000:.0f} ms "
          f"(median), the resolution of these figures")
    for kind, values in delays.items():
        assert max(values) < 1.0, f"{kind} took {max(values):.3f} s on the slower replica"
