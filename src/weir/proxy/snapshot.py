"""The in-memory snapshot: everything the hot path needs to answer without Postgres.

A `Snapshot` is immutable. `SnapshotKeeper` builds a new one from Postgres
and swaps a single reference, so a request sees the old snapshot or the new
one, never a mix. It reloads when Postgres notifies a change (bursts are
coalesced), after a lost notification connection comes back, and every
`reload_seconds` as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import psycopg

from weir.crypto import CredentialBox
from weir.storage.snapshot import SNAPSHOT_CHANNEL, load_snapshot_rows

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05  # wait this long after a notification, so a burst of changes costs one reload
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    name: str
    kind: str
    base_url: str
    credential: str | None
    headers: tuple[tuple[str, str], ...]
    api_version: str | None

    def __repr__(self) -> str:
        return f"Provider(name={self.name!r}, kind={self.kind!r})"


@dataclass(frozen=True, slots=True)
class Deployment:
    id: int
    provider: Provider
    upstream_model: str
    weight: int
    timeout_seconds: float
    connect_timeout_seconds: float
    idle_timeout_seconds: float | None = None

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class Route:
    """An alias at run time: its deployments, how to pick among them, and retry policy."""

    alias: str
    deployments: tuple[Deployment, ...]
    strategy: str
    fallbacks: tuple[str, ...]
    max_attempts: int
    retry_on: frozenset[int]
    log_bodies: str | None

    def attempt_order(self) -> list[Deployment]:
        """Return the deployments in the order to try them: weighted random, without repeats."""
        if len(self.deployments) == 1:
            return [self.deployments[0]]
        remaining = [d for d in self.deployments if d.weight > 0] or list(self.deployments)
        order: list[Deployment] = []
        while remaining:
            weights = list(accumulate(max(d.weight, 1) for d in remaining))
            index = bisect(weights, random.random() * weights[-1])
            order.append(remaining.pop(min(index, len(remaining) - 1)))
        return order


@dataclass(frozen=True, slots=True)
class AuthorizedKey:
    """A live virtual key with everything needed to authorise a request."""

    id: int
    prefix: str
    user_id: int
    user_name: str
    aliases: frozenset[str]
    log_bodies: str | None
    expires_at: float | None

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Snapshot:
    keys: dict[bytes, AuthorizedKey]
    routes: dict[str, Route]
    loaded_at: float


class SnapshotKeeper:
    """Holds the current snapshot of one worker and keeps it fresh."""

    def __init__(self, database_url: str, credential_box: CredentialBox, reload_seconds: float) -> None:
        self._database_url = database_url
        self._credential_box = credential_box
        self._reload_seconds = reload_seconds
        self._reload_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.current: Snapshot | None = None
        self.database_available = False
        self.reloads = 0

    async def start(self) -> None:
        """Load the first snapshot, then keep it fresh in the background."""
        await self.reload()
        self._tasks = [
            asyncio.create_task(self._listen(), name="weir-snapshot-listen"),
            asyncio.create_task(self._reload_when_requested(), name="weir-snapshot-reload"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def reload(self) -> None:
        rows = await load_snapshot_rows(self._database_url)
        self.current = build_snapshot(rows, self._credential_box)
        self.reloads += 1
        logger.debug("Snapshot reloaded: %d keys, %d routes", len(self.current.keys), len(self.current.routes))

    async def _reload_when_requested(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._reload_requested.wait(), self._reload_seconds)
                await asyncio.sleep(COALESCE_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._reload_requested.clear()
            try:
                await self.reload()
            except (psycopg.Error, OSError) as error:
                # The old snapshot stays in use; the listener reports the outage.
                logger.debug("Snapshot reload failed, keeping the current one: %s", type(error).__name__)

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True, connect_timeout=5
                ) as connection:
                    await connection.execute(f"LISTEN {SNAPSHOT_CHANNEL}")
                    self._database_back(failures)
                    failures = 0
                    async for _ in connection.notifies():
                        self._reload_requested.set()
            except (psycopg.Error, OSError) as error:
                failures += 1
                self._database_lost(failures, error)
                await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS)) - 1])

    def _database_back(self, failures: int) -> None:
        self.database_available = True
        if failures:
            logger.info("Postgres is reachable again; reloading the snapshot")
            self._reload_requested.set()  # catch up on changes whose notifications were missed

    def _database_lost(self, failures: int, error: Exception) -> None:
        if failures == 1 and self.database_available:
            logger.warning(
                "Lost the connection to Postgres (%s); serving from the last snapshot until it is back",
                type(error).__name__,
            )
        self.database_available = False


def build_snapshot(rows: dict[str, list[dict[str, Any]]], credential_box: CredentialBox) -> Snapshot:
    """Build an immutable snapshot from the rows of `weir.storage.snapshot`."""
    providers = {row["id"]: _provider(row, credential_box) for row in rows["providers"]}
    routes = _routes(rows, providers)

    grants: dict[int, set[str]] = {}
    for row in rows["grants"]:
        grants.setdefault(row["user_id"], set()).add(row["alias"])

    keys: dict[bytes, AuthorizedKey] = {}
    now = time.time()
    for row in rows["keys"]:
        key = _authorized_key(row, grants.get(row["user_id"], set()))
        keys[bytes(row["hash"])] = key
        if row["previous_hash"] is not None and (row["previous_expires_at"] or 0) > now:
            keys[bytes(row["previous_hash"])] = _with_expiry(key, float(row["previous_expires_at"]))
    return Snapshot(keys=keys, routes=routes, loaded_at=now)


def _provider(row: dict[str, Any], credential_box: CredentialBox) -> Provider:
    credential = credential_box.open(bytes(row["credential"])) if row["credential"] is not None else None
    return Provider(
        id=row["id"], name=row["name"], kind=row["kind"], base_url=row["base_url"].rstrip("/"),
        credential=credential, headers=tuple((k.lower(), v) for k, v in row["headers"].items()),
        api_version=row["api_version"],
    )


def _routes(rows: dict[str, list[dict[str, Any]]], providers: dict[int, Provider]) -> dict[str, Route]:
    deployments: dict[int, list[Deployment]] = {}
    for row in rows["deployments"]:
        provider = providers.get(row["provider_id"])
        if provider is None:  # disabled provider: its deployments are out of service
            continue
        deployments.setdefault(row["alias_id"], []).append(Deployment(
            id=row["id"], provider=provider, upstream_model=row["upstream_model"], weight=row["weight"],
            timeout_seconds=row["timeout_seconds"], connect_timeout_seconds=row["connect_timeout_seconds"],
            idle_timeout_seconds=row["idle_timeout_seconds"],
        ))

    routes = {}
    for row in rows["aliases"]:
        routes[row["name"]] = Route(
            alias=row["name"], deployments=tuple(deployments.get(row["id"], ())), strategy=row["strategy"],
            fallbacks=tuple(row["fallbacks"]), max_attempts=row["max_attempts"],
            retry_on=frozenset(row["retry_on"]), log_bodies=row["log_bodies"],
        )
    return routes


def _authorized_key(row: dict[str, Any], granted: set[str]) -> AuthorizedKey:
    # A key's own allow-list narrows its user's grants; it never widens them.
    allowed = row["allowed_aliases"]
    aliases = frozenset(granted if allowed is None else granted.intersection(allowed))
    expires_at = float(row["expires_at"]) if row["expires_at"] is not None else None
    return AuthorizedKey(
        id=row["id"], prefix=row["prefix"], user_id=row["user_id"], user_name=row["user_name"],
        aliases=aliases, log_bodies=row["log_bodies"], expires_at=expires_at,
    )


def _with_expiry(key: AuthorizedKey, expires_at: float) -> AuthorizedKey:
    earliest = expires_at if key.expires_at is None else min(expires_at, key.expires_at)
    return AuthorizedKey(
        id=key.id, prefix=key.prefix, user_id=key.user_id, user_name=key.user_name,
        aliases=key.aliases, log_bodies=key.log_bodies, expires_at=earliest,
    )
