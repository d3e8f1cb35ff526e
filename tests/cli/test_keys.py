"""`gatewayctl keys`: issue, list, show, rotate and revoke, with --json and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.cli.conftest import Gatewayctl, fails, flat, run_json
from weir.cli.documents import SHAPES
from weir.crypto import CredentialBox, hash_virtual_key
from weir.proxy.auth import authenticate
from weir.proxy.errors import ProxyError
from weir.proxy.snapshot import build_snapshot
from weir.storage.database import connect
from weir.storage.snapshot import read_snapshot_rows

KEY_FIELDS = set(SHAPES["virtual key"]) - {"key"}


@pytest.fixture
def alice(gatewayctl: Gatewayctl) -> str:
    assert gatewayctl("users", "create", "alice").exit_code == 0
    return "alice"


def key_row(database_url: str, key_id: int) -> dict[str, object]:
    with connect(database_url) as connection:
        row = connection.execute("SELECT * FROM virtual_keys WHERE id = %s", (key_id,)).fetchone()
    assert row is not None
    return dict(row)


def test_keys_create_prints_secret_once(gatewayctl: Gatewayctl, alice: str) -> None:
    result = gatewayctl("keys", "create", "--user", alice, "--name", "laptop")
    assert result.exit_code == 0
    assert "Copy it now: it is not shown again." in flat(result.stdout)
    secret = next(word for word in result.stdout.split() if word.startswith("wr-") and len(word) > 40)
    listing = gatewayctl("keys", "list")
    assert secret[:12] in listing.stdout
    assert secret not in listing.stdout
    assert secret not in gatewayctl("keys", "show", secret[:12]).stdout


def test_keys_create_json_has_documented_shape(gatewayctl: Gatewayctl, alice: str, alias: str,
                                               database_url: str) -> None:
    document = run_json(gatewayctl, "keys", "create", "--user", alice, "--name", "ci", "--expires-in", "30d",
                        "--alias", alias, "--requests-per-minute", "60", "--tokens-per-minute", "5000")
    assert set(document) == set(SHAPES["virtual key"])
    assert document["key"].startswith(document["prefix"])
    assert document["allowed_aliases"] == ["chat"]
    assert document["requests_per_minute"] == 60
    assert document["tokens_per_minute"] == 5000
    expires_at = datetime.fromisoformat(document["expires_at"])
    assert timedelta(days=29) < expires_at - datetime.now(UTC) <= timedelta(days=30)
    assert key_row(database_url, document["id"])["hash"] == hash_virtual_key(document["key"])


def test_keys_create_limits_land_in_rate_limits(gatewayctl: Gatewayctl, alice: str, database_url: str) -> None:
    document = run_json(gatewayctl, "keys", "create", "--user", alice, "--requests-per-minute", "7")
    with connect(database_url) as connection:
        row = connection.execute(
            "SELECT requests_per_minute, tokens_per_minute FROM rate_limits WHERE virtual_key_id = %s",
            (document["id"],),
        ).fetchone()
    assert row == {"requests_per_minute": 7, "tokens_per_minute": None}


def test_keys_create_accepts_an_expiry_date(gatewayctl: Gatewayctl, alice: str) -> None:
    document = run_json(gatewayctl, "keys", "create", "--user", alice, "--expires-in", "2099-01-31")
    assert document["expires_at"] == "2099-01-31T00:00:00+00:00"


@pytest.mark.parametrize("expiry", ["soon", "30 days", "2020-01-01", "-5d"])
def test_keys_create_invalid_expiry_names_flag(gatewayctl: Gatewayctl, alice: str, expiry: str) -> None:
    error = fails(gatewayctl, "keys", "create", "--user", alice, "--expires-in", expiry)
    assert error.startswith(f"Error: --expires-in {expiry!r}")
    assert "30d" in error


def test_keys_create_zero_limit_is_bad_usage(gatewayctl: Gatewayctl, alice: str) -> None:
    result = gatewayctl("keys", "create", "--user", alice, "--requests-per-minute", "0")
    assert result.exit_code == 2
    assert "--requests-per-minute" in result.stderr


def test_keys_create_unknown_user_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "keys", "create", "--user", "carol")
    assert error == "Error: No user named 'carol'. List users with `gatewayctl users list`."


def test_keys_create_unknown_alias_says_how_to_list(gatewayctl: Gatewayctl, alice: str) -> None:
    error = fails(gatewayctl, "keys", "create", "--user", alice, "--alias", "gpt-9")
    assert error == "Error: No model alias named 'gpt-9'. List aliases with `gatewayctl models list`."
    assert run_json(gatewayctl, "keys", "list") == []


def test_keys_create_duplicate_name_names_conflict(gatewayctl: Gatewayctl, alice: str) -> None:
    gatewayctl("keys", "create", "--user", alice, "--name", "laptop")
    error = fails(gatewayctl, "keys", "create", "--user", alice, "--name", "laptop")
    assert error == "Error: User 'alice' already has a key named 'laptop'. Choose another --name."


def test_keys_list_filters_by_user(gatewayctl: Gatewayctl, alice: str) -> None:
    gatewayctl("users", "create", "bob")
    gatewayctl("keys", "create", "--user", alice)
    gatewayctl("keys", "create", "--user", "bob")
    documents = run_json(gatewayctl, "keys", "list", "--user", "bob")
    assert [key["user"] for key in documents] == ["bob"]
    assert all(set(key) == KEY_FIELDS for key in documents)


def test_keys_show_by_id_and_prefix(gatewayctl: Gatewayctl, alice: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice, "--tokens-per-minute", "900")
    by_id = run_json(gatewayctl, "keys", "show", str(created["id"]))
    by_prefix = run_json(gatewayctl, "keys", "show", created["prefix"])
    assert by_id == by_prefix
    assert set(by_id) == KEY_FIELDS
    table = gatewayctl("keys", "show", created["prefix"])
    assert "900" in table.stdout


def test_keys_show_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "keys", "show", "wr-nothing")
    assert error == "Error: No virtual key with ID or prefix 'wr-nothing'. List keys with `gatewayctl keys list`."


def test_keys_rotate_with_grace_keeps_old_secret(gatewayctl: Gatewayctl, alice: str, database_url: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    rotated = run_json(gatewayctl, "keys", "rotate", created["prefix"], "--grace", "10m")
    assert set(rotated) == set(SHAPES["virtual key"])
    assert rotated["id"] == created["id"]
    assert rotated["key"] != created["key"]
    row = key_row(database_url, created["id"])
    assert row["hash"] == hash_virtual_key(rotated["key"])
    assert row["previous_hash"] == hash_virtual_key(created["key"])
    previous_expires_at = datetime.fromisoformat(rotated["previous_expires_at"])
    assert timedelta(minutes=9) < previous_expires_at - datetime.now(UTC) <= timedelta(minutes=10)


def test_keys_rotate_without_grace_drops_old_secret(gatewayctl: Gatewayctl, alice: str,
                                                    database_url: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    result = gatewayctl("keys", "rotate", str(created["id"]))
    assert result.exit_code == 0
    assert "The old secret no longer works." in flat(result.stdout)
    assert key_row(database_url, created["id"])["previous_hash"] is None


def test_keys_rotate_invalid_grace_names_flag(gatewayctl: Gatewayctl, alice: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    error = fails(gatewayctl, "keys", "rotate", created["prefix"], "--grace", "ten minutes")
    assert error.startswith("Error: --grace 'ten minutes' is not a duration.")


def test_keys_rotate_revoked_key_is_refused(gatewayctl: Gatewayctl, alice: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    gatewayctl("keys", "revoke", created["prefix"])
    assert "is revoked" in fails(gatewayctl, "keys", "rotate", created["prefix"])


def test_keys_revoke_sets_revoked_at(gatewayctl: Gatewayctl, alice: str) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    result = gatewayctl("keys", "revoke", created["prefix"])
    assert result.exit_code == 0
    assert flat(result.stdout).startswith(f"Revoked key {created['prefix']}")
    assert run_json(gatewayctl, "keys", "show", created["prefix"])["revoked_at"] is not None


def test_keys_revoke_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    assert "gatewayctl keys list" in fails(gatewayctl, "keys", "revoke", "12345")


def authenticates(database_url: str, box: CredentialBox, secret: str) -> bool:
    """Whether the proxy's snapshot, loaded now, accepts `secret`."""
    snapshot = build_snapshot(read_snapshot_rows(database_url), box)
    try:
        authenticate(snapshot, secret)
    except ProxyError as error:
        assert error.status == 401
        return False
    return True


def test_keys_rotation_grace_seen_by_proxy(gatewayctl: Gatewayctl, alice: str, database_url: str,
                                           credential_box: CredentialBox) -> None:
    created = run_json(gatewayctl, "keys", "create", "--user", alice)
    graced = run_json(gatewayctl, "keys", "rotate", created["prefix"], "--grace", "10m")
    assert authenticates(database_url, credential_box, created["key"])
    assert authenticates(database_url, credential_box, graced["key"])

    final = run_json(gatewayctl, "keys", "rotate", graced["prefix"])
    assert not authenticates(database_url, credential_box, created["key"])
    assert not authenticates(database_url, credential_box, graced["key"])
    assert authenticates(database_url, credential_box, final["key"])

    gatewayctl("keys", "revoke", final["prefix"])
    assert not authenticates(database_url, credential_box, final["key"])
