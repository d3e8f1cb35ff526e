"""The in-memory snapshot: everything the hot path needs to handle a request without Postgres.

A `Snapshot` is immutable. `SnapshotKeeper` builds a new one from Postgres
and swaps a single reference, so a request uses the old snapshot or the new
one, never a mix. It reloads when Postgres notifies a change (bursts are
coalesced), after every (re)connection of its notification listener, and
every `reload_seconds` as a safety net. While Postgres is unreachable it keeps
serving the last snapshot. Saving snapshots to disk lives in `snapshot_store`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import time
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import psycopg

from weir.crypto import CredentialBox
from weir.proxy.limits import Limits, Subject
from weir.errors import ConfigError
from weir.proxy.snapshot_store import SnapshotStore, database_identity
from weir.storage.snapshot import SNAPSHOT_CHANNEL, Rows, read_snapshot_rows

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05  # wait this long after a notification, so a burst of changes costs one reload
RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
# TCP keepalives let the listener notice a peer that vanished without closing
# the connection (a dead host, a dropped route) in about 11 s, not hours.
_KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}


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
    limits: tuple[Subject, ...] = ()
    """The alias's own limit, when it has one."""

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
    limits: tuple[Subject, ...] = ()
    """The limits of this key and of its user, when they have any."""

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Snapshot:
    keys: dict[bytes, AuthorizedKey]
    routes: dict[str, Route]
    loaded_at: float


class SnapshotKeeper:
    """Holds the current snapshot of one worker and keeps it fresh.

    Reading Postgres and building the snapshot (which decrypts provider
    credentials) run in a worker thread, so a reload costs the event loop
    only the final reference swap. One task listens for change notifications
    and another runs the reloads, so reloads never overlap.
    """

    def __init__(self, database_url: str, credential_box: CredentialBox, reload_seconds: float,
                 store: SnapshotStore | None = None) -> None:
        self._database_url = database_url
        self._credential_box = credential_box
        self._reload_seconds = reload_seconds
        self._store = store
        self._reload_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._outage_reported = False
        self.current: Snapshot | None = None
        self.database_available = False
        self.reloads = 0
        self.reload_failures = 0

    async def start(self, allow_stale: bool = False) -> None:
        """Load the first snapshot, then keep it fresh in the background.

        With `allow_stale`, an unreachable Postgres is not fatal when the
        store has a last-known snapshot: the worker starts from it, and the
        listener catches up once Postgres is reachable.
        """
        try:
            await self.reload()
        except (psycopg.Error, OSError) as error:
            if not allow_stale or not await self._start_from_store():
                raise
            logger.debug("First snapshot load failed: %s", type(error).__name__)
        self._tasks = [
            asyncio.create_task(self._listen(), name="weir-snapshot-listen"),
            asyncio.create_task(self._reload_when_requested(), name="weir-snapshot-reload"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def reload(self) -> None:
        """Read Postgres and swap in a new snapshot; raises psycopg.Error or OSError when unreachable."""
        snapshot = await asyncio.to_thread(self._read_and_build)
        self.current = snapshot  # one reference assignment: a request uses the old snapshot or the new one
        self.reloads += 1
        logger.debug("Snapshot reloaded: %d keys, %d routes", len(snapshot.keys), len(snapshot.routes))

    def _read_and_build(self) -> Snapshot:
        rows = read_snapshot_rows(self._database_url)
        snapshot = build_snapshot(rows, self._credential_box)
        if self._store is not None:
            self._store.save(rows, database_identity(self._database_url))
        return snapshot

    async def _start_from_store(self) -> bool:
        stored = await asyncio.to_thread(self._store.load) if self._store is not None else None
        if stored is None:
            return False
        self.current = await asyncio.to_thread(build_snapshot, stored.rows, self._credential_box)
        self._outage_reported = True  # `serve` already warned; log when Postgres is back
        logger.info("Worker %d starts from the last-known snapshot saved at %s", os.getpid(),
                    time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(stored.saved_at)))
        return True

    async def _reload_when_requested(self) -> None:
        failures = 0
        while True:
            # After a failed reload, retry soon rather than at the next periodic reload.
            wait = self._reload_seconds if failures == 0 else _backoff(failures)
            try:
                await asyncio.wait_for(self._reload_requested.wait(), wait)
                await asyncio.sleep(COALESCE_SECONDS)
            except asyncio.TimeoutError:
                pass
            # Cleared before reading: a change committed during the reload
            # sets the event again and costs one more reload, never a miss.
            self._reload_requested.clear()
            try:
                await self.reload()
                failures = 0
            except (psycopg.OperationalError, OSError) as error:
                # The old snapshot stays in use; the listener reports the outage.
                failures += 1
                self.reload_failures += 1
                logger.debug("Snapshot reload failed, keeping the current one: %s", type(error).__name__)
            except (psycopg.Error, ConfigError) as error:
                # Not an outage (a schema behind this Weir, a credential sealed
                # with another secret key), so it is logged once per series of failures.
                failures += 1
                self.reload_failures += 1
                if failures == 1:
                    logger.error("Snapshot reload failed, keeping the current one: %s", _describe(error))

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._database_url, autocommit=True, connect_timeout=5, **_KEEPALIVES
                ) as connection:
                    await connection.execute(f"LISTEN {SNAPSHOT_CHANNEL}")
                    self._database_back()
                    failures = 0
                    async for _ in connection.notifies():
                        self._reload_requested.set()
                raise psycopg.OperationalError("the notification stream ended")
            except (psycopg.Error, OSError) as error:
                failures += 1
                self._database_lost(error)
                await asyncio.sleep(_backoff(failures))

    def _database_back(self) -> None:
        self.database_available = True
        if self._outage_reported:
            self._outage_reported = False
            logger.info("Postgres is reachable again; reloading the snapshot")
        # Reload after every LISTEN, the first one included: a change
        # committed before LISTEN took effect sent a notification that this worker missed.
        self._reload_requested.set()

    def _database_lost(self, error: Exception) -> None:
        self.database_available = False
        if not self._outage_reported:
            self._outage_reported = True
            logger.warning(
                "Lost the connection to Postgres (%s); serving from the last snapshot until it is back",
                type(error).__name__,
            )


def freeze_startup_objects() -> None:
    """Exclude every object alive now (modules, clients, the first snapshot) from garbage collection passes.

    A full collection walks every tracked object while holding the GIL. In a
    serve worker with 10,000 keys that took 100-200 ms (measured on a shared
    2-core machine), and snapshot reloads allocate enough to trigger one
    every few reloads. Frozen objects are
    still freed by reference counting; only reference cycles created before
    this call are never collected, which at start-up is a one-time, bounded cost.
    """
    gc.collect()
    gc.freeze()


def _describe(error: Exception) -> str:
    # These errors come from the server (a missing column, say) and name schema objects, not secrets.
    if isinstance(error, ConfigError):
        return str(error)
    first_line = str(error).partition("\n")[0]  # the server adds LINE and HINT lines
    return f"{type(error).__name__}: {first_line}"


def _backoff(failures: int) -> float:
    return RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS)) - 1]


def build_snapshot(rows: Rows, credential_box: CredentialBox) -> Snapshot:
    """Build an immutable snapshot from the rows of `weir.storage.snapshot`."""
    providers = {row["id"]: _provider(row, credential_box) for row in rows["providers"]}
    limits = _limits(rows)
    routes = _routes(rows, providers, limits)

    granted: dict[int, set[str]] = {}
    for row in rows["grants"]:
        granted.setdefault(row["user_id"], set()).add(row["alias"])
    # One frozenset per user, shared by the keys without an allow-list of their own.
    grants = {user_id: frozenset(aliases) for user_id, aliases in granted.items()}
    no_grants: frozenset[str] = frozenset()

    keys: dict[bytes, AuthorizedKey] = {}
    now = time.time()
    for row in rows["keys"]:
        key = _authorized_key(row, grants.get(row["user_id"], no_grants), limits)
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


def _limits(rows: Rows) -> dict[tuple[str, int], Limits]:
    """Index the rate_limits rows by subject: ("user", id), ("virtual key", id) or ("model alias", id)."""
    limits = {}
    for row in rows["rate_limits"]:
        subject = (("user", row["user_id"]) if row["user_id"] is not None
                   else ("virtual key", row["virtual_key_id"]) if row["virtual_key_id"] is not None
                   else ("model alias", row["alias_id"]))
        limits[subject] = Limits(row["requests_per_minute"], row["tokens_per_minute"])
    return limits


def _routes(rows: Rows, providers: dict[int, Provider], limits: dict[tuple[str, int], Limits]) -> dict[str, Route]:
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
            limits=_subjects(limits, ("model alias", row["id"]), row["name"]),
        )
    return routes


def _subjects(limits: dict[tuple[str, int], Limits], subject: tuple[str, int], name: int | str) -> tuple[Subject, ...]:
    found = limits.get(subject)
    return () if found is None else ((subject[0], name, found),)


def _authorized_key(row: dict[str, Any], granted: frozenset[str],
                    limits: dict[tuple[str, int], Limits]) -> AuthorizedKey:
    # A key's own allow-list narrows its user's grants; it never widens them.
    allowed = row["allowed_aliases"]
    aliases = granted if allowed is None else granted.intersection(allowed)
    expires_at = float(row["expires_at"]) if row["expires_at"] is not None else None
    subjects = (_subjects(limits, ("virtual key", row["id"]), row["id"])
                + _subjects(limits, ("user", row["user_id"]), row["user_id"]))
    return AuthorizedKey(
        id=row["id"], prefix=row["prefix"], user_id=row["user_id"], user_name=row["user_name"],
        aliases=aliases, log_bodies=row["log_bodies"], expires_at=expires_at, limits=subjects,
    )


def _with_expiry(key: AuthorizedKey, expires_at: float) -> AuthorizedKey:
    earliest = expires_at if key.expires_at is None else min(expires_at, key.expires_at)
    return AuthorizedKey(
        id=key.id, prefix=key.prefix, user_id=key.user_id, user_name=key.user_name,
        aliases=key.aliases, log_bodies=key.log_bodies, expires_at=earliest, limits=key.limits,
    )
