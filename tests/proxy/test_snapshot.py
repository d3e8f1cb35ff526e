"""The snapshot keeper of one worker, in-process: reloads, coalescing, outages, the stored snapshot."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from tests.conftest import seed
from tests.proxy.conftest import standard_spec
from tests.tcp_proxy import TcpProxy, relay  # noqa: F401  (relay is a fixture)
from weir.crypto import CredentialBox, hash_virtual_key
from weir.errors import ConfigError
from weir.proxy.snapshot import SnapshotKeeper, build_snapshot
from weir.proxy.snapshot_store import SnapshotStore, database_identity
from weir.storage.database import connect
from weir.storage.groups import revoke_alias
from weir.storage.snapshot import read_snapshot_rows
from weir.storage.virtual_keys import revoke_key

KEEPER_LOGGER = "weir.proxy.snapshot"
CREDENTIAL = "sk-provider-credential-7f3a"


@pytest.fixture
def keys(database_url: str, credential_box: CredentialBox) -> dict[str, str]:
    spec = standard_spec("http://127.0.0.1:9/v1", credential="env:WEIR_TEST_CREDENTIAL")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WEIR_TEST_CREDENTIAL", CREDENTIAL)
        return seed(database_url, credential_box, spec, {"alice": "alice", "alice-2": "alice"})


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait until `condition()` holds; return how long that took, or fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        if loop.time() - started > timeout:
            raise AssertionError(f"condition still false after {timeout} s")
        await asyncio.sleep(0.01)
    return loop.time() - started


def key_known(keeper: SnapshotKeeper, secret: str) -> bool:
    assert keeper.current is not None
    return hash_virtual_key(secret) in keeper.current.keys


def test_revoked_key_leaves_snapshot_within_a_second(database_url: str, credential_box: CredentialBox,
                                                      keys: dict[str, str]) -> None:
    async def scenario() -> None:
        keeper = SnapshotKeeper(database_url, credential_box, reload_seconds=60)
        await keeper.start()
        try:
            assert key_known(keeper, keys["alice"])
            with connect(database_url) as connection:
                revoke_key(connection, keys["alice"][:12])
            delay = await eventually(lambda: not key_known(keeper, keys["alice"]))
            assert delay < 1.0
            assert key_known(keeper, keys["alice-2"])
        finally:
            await keeper.stop()

    run(scenario)


def test_burst_of_changes_costs_few_reloads(database_url: str, credential_box: CredentialBox,
                                            keys: dict[str, str]) -> None:
    async def scenario() -> None:
        keeper = SnapshotKeeper(database_url, credential_box, reload_seconds=60)
        await keeper.start()
        try:
            await eventually(lambda: keeper.reloads >= 2)  # the reload after the first LISTEN
            before = keeper.reloads
            with connect(database_url) as connection:
                connection.autocommit = True
                for number in range(30):
                    connection.execute("UPDATE aliases SET max_attempts = %s WHERE name = 'chat'", (number + 1,))
            await eventually(lambda: keeper.current is not None
                             and keeper.current.routes["chat"].max_attempts == 30)
            await asyncio.sleep(0.3)
            # Thirty committed changes, thirty notifications: coalescing
            # turns them into a handful of reloads, and the last change wins.
            assert keeper.reloads - before <= 5
        finally:
            await keeper.stop()

    run(scenario)


def test_outage_keeps_snapshot_and_catches_up(database_url: str, credential_box: CredentialBox,
                                              keys: dict[str, str], relay: TcpProxy,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, KEEPER_LOGGER)

    async def scenario() -> None:
        keeper = SnapshotKeeper(relay.url, credential_box, reload_seconds=60)
        await keeper.start()
        try:
            await eventually(lambda: keeper.database_available)
            relay.cut()
            await eventually(lambda: not keeper.database_available)

            # Missed while cut off: no notification can reach the keeper.
            with connect(database_url) as connection:
                revoke_key(connection, keys["alice"][:12])
                revoke_alias(connection, "team", "same")
            await asyncio.sleep(1.5)  # several failed reload attempts
            assert key_known(keeper, keys["alice"])
            assert keeper.reload_failures >= 1

            relay.restore()
            await eventually(lambda: not key_known(keeper, keys["alice"]), timeout=5)
            assert keeper.database_available
            assert keeper.current is not None
            assert keeper.current.keys[hash_virtual_key(keys["alice-2"])].aliases == frozenset({"chat"})
        finally:
            await keeper.stop()

    run(scenario)
    records = [r for r in caplog.records if r.name == KEEPER_LOGGER and r.levelno >= logging.INFO]
    assert [r.levelname for r in records] == ["WARNING", "INFO"]
    assert "Lost the connection to Postgres" in records[0].getMessage()
    assert "reachable again" in records[1].getMessage()


def test_change_right_after_return_is_seen(database_url: str, credential_box: CredentialBox,
                                           keys: dict[str, str], relay: TcpProxy) -> None:
    async def scenario() -> None:
        keeper = SnapshotKeeper(relay.url, credential_box, reload_seconds=60)
        await keeper.start()
        try:
            relay.cut()
            await eventually(lambda: not keeper.database_available)
            relay.restore()
            await eventually(lambda: keeper.database_available, timeout=10)
            with connect(database_url) as connection:
                revoke_key(connection, keys["alice"][:12])
            delay = await eventually(lambda: not key_known(keeper, keys["alice"]))
            assert delay < 1.0
        finally:
            await keeper.stop()

    run(scenario)


def test_store_file_is_private_and_keeps_credentials_sealed(database_url: str, credential_box: CredentialBox,
                                                            keys: dict[str, str], tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "data" / "snapshot.msgpack")

    async def scenario() -> None:
        keeper = SnapshotKeeper(database_url, credential_box, reload_seconds=60, store=store)
        await keeper.start()
        await keeper.stop()

    run(scenario)
    content = store.path.read_bytes()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert CREDENTIAL.encode() not in content
    assert keys["alice"].encode() not in content
    assert [p.name for p in store.path.parent.iterdir()] == ["snapshot.msgpack"]  # no temporary left over

    stored = store.load()
    assert stored is not None
    rebuilt = build_snapshot(stored.rows, credential_box)
    assert hash_virtual_key(keys["alice"]) in rebuilt.keys
    assert rebuilt.routes["chat"].deployments[0].provider.credential == CREDENTIAL


def test_store_skips_unchanged_rows(database_url: str, tmp_path: Path, keys: dict[str, str]) -> None:
    store = SnapshotStore(tmp_path / "snapshot.msgpack")
    rows = read_snapshot_rows(database_url)

    assert store.save(rows, "db") is True
    assert store.save(rows, "db") is False
    rows["aliases"][0]["max_attempts"] += 1
    assert store.save(rows, "db") is True


def test_damaged_store_file_is_rejected(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshot.msgpack")
    store.path.write_bytes(b"\x93not a snapshot")

    with pytest.raises(ConfigError, match="is damaged"):
        store.load()
    assert SnapshotStore(tmp_path / "missing.msgpack").load() is None


def test_database_identity_leaves_out_password() -> None:
    assert database_identity("postgresql://weir:pw-7f3a@127.0.0.1:5433/gateway") == "weir@127.0.0.1:5433/gateway"
    assert "pw-7f3a" not in database_identity("host=127.0.0.1 port=5433 user=weir password=pw-7f3a dbname=gateway")


def test_keeper_starts_stale_then_catches_up(database_url: str, credential_box: CredentialBox,
                                             keys: dict[str, str], relay: TcpProxy, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, KEEPER_LOGGER)
    store = SnapshotStore(tmp_path / "snapshot.msgpack")

    async def scenario() -> None:
        first = SnapshotKeeper(relay.url, credential_box, reload_seconds=60, store=store)
        await first.start()
        await first.stop()
        relay.cut()
        with connect(database_url) as connection:
            revoke_key(connection, keys["alice"][:12])

        with pytest.raises((psycopg.OperationalError, OSError)):
            await SnapshotKeeper(relay.url, credential_box, reload_seconds=60, store=store).start()

        keeper = SnapshotKeeper(relay.url, credential_box, reload_seconds=60, store=store)
        await keeper.start(allow_stale=True)
        try:
            assert key_known(keeper, keys["alice"])  # stale: the revocation is not known yet
            assert not keeper.database_available
            relay.restore()
            await eventually(lambda: not key_known(keeper, keys["alice"]), timeout=10)
            assert keeper.database_available
        finally:
            await keeper.stop()

    run(scenario)
    messages = [r.getMessage() for r in caplog.records if r.name == KEEPER_LOGGER and r.levelno >= logging.INFO]
    assert any("last-known snapshot" in message for message in messages)
    assert any("reachable again" in message for message in messages)


def test_schema_error_is_logged_once(database_url: str, credential_box: CredentialBox, keys: dict[str, str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, KEEPER_LOGGER)

    async def scenario() -> None:
        keeper = SnapshotKeeper(database_url, credential_box, reload_seconds=60)
        await keeper.start()
        try:
            await eventually(lambda: keeper.reloads >= 2)  # the reload after the first LISTEN
            with connect(database_url) as connection:
                connection.execute("ALTER TABLE aliases RENAME COLUMN retry_on TO retry_statuses")
                connection.execute("SELECT pg_notify('weir_snapshot', 'aliases')")  # DDL fires no trigger, so notify by hand
            await eventually(lambda: keeper.reload_failures >= 3)
            assert key_known(keeper, keys["alice"])  # the last good snapshot stays in use
        finally:
            await keeper.stop()

    run(scenario)
    errors = [r.getMessage() for r in caplog.records if r.name == KEEPER_LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert 'UndefinedColumn: column "retry_on" does not exist' in errors[0]
