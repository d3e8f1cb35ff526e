"""`gatewayctl users`: create, list, show, update and delete, with --json and bad input."""

from __future__ import annotations

from tests.cli.conftest import Gatewayctl, fails, flat, run_json
from weir.cli.documents import SHAPES


def test_users_create_prints_sentence(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "create", "alice", "--role", "auditor")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Created user alice with role auditor, in no group."


def test_users_create_json_has_documented_shape(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    document = run_json(gatewayctl, "users", "create", "alice", "--group", "engineering")
    assert set(document) == set(SHAPES["user"])
    assert document["name"] == "alice"
    assert document["role"] == "member"
    assert document["groups"] == ["engineering"]
    assert document["source"] == "cli"


def test_users_create_invalid_role_names_flag(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "users", "create", "alice", "--role", "owner")
    assert error == "Error: --role 'owner' is not a role. Use one of: admin, auditor, member."


def test_users_create_duplicate_names_conflict(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    error = fails(gatewayctl, "users", "create", "alice")
    assert error == "Error: A user named 'alice' already exists."


def test_users_create_unknown_group_creates_nothing(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "users", "create", "alice", "--group", "nobody")
    assert "No group named 'nobody'" in error
    assert "gatewayctl groups list" in error
    assert run_json(gatewayctl, "users", "list") == []


def test_users_list_shows_table_and_json(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "bob")
    gatewayctl("users", "create", "alice", "--role", "admin")
    table = gatewayctl("users", "list")
    assert table.exit_code == 0
    assert "alice" in table.stdout
    assert "admin" in table.stdout
    assert [user["name"] for user in run_json(gatewayctl, "users", "list")] == ["alice", "bob"]


def test_users_list_empty_says_so(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "list")
    assert result.exit_code == 0
    assert flat(result.stdout) == "No users yet."


def test_users_show_prints_role_and_limits(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    result = gatewayctl("users", "show", "alice")
    assert result.exit_code == 0
    assert "member" in result.stdout
    assert "no limit of its own" in result.stdout
    assert set(run_json(gatewayctl, "users", "show", "alice")) == set(SHAPES["user"])


def test_users_show_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    error = fails(gatewayctl, "users", "show", "carol")
    assert error == "Error: No user named 'carol'. List users with `gatewayctl users list`."


def test_users_update_changes_role_and_groups(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("groups", "create", "research")
    gatewayctl("users", "create", "alice", "--group", "engineering")
    document = run_json(gatewayctl, "users", "update", "alice", "--role", "auditor", "--group", "research")
    assert document["role"] == "auditor"
    assert document["groups"] == ["research"]


def test_users_update_role_only_keeps_groups(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("users", "create", "alice", "--group", "engineering")
    result = gatewayctl("users", "update", "alice", "--role", "admin")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Updated user alice: role admin, in groups engineering."


def test_users_update_without_changes_is_rejected(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    assert fails(gatewayctl, "users", "update", "alice") == (
        "Error: Nothing to change: give --role, --group, a limit or --no-limits.")


def test_users_update_invalid_role_names_flag(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    assert "--role 'root' is not a role" in fails(gatewayctl, "users", "update", "alice", "--role", "root")


def test_users_update_unknown_user_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    assert "gatewayctl users list" in fails(gatewayctl, "users", "update", "carol", "--role", "admin")


def test_users_delete_revokes_keys_and_says_how_many(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    gatewayctl("keys", "create", "--user", "alice", "--name", "one")
    gatewayctl("keys", "create", "--user", "alice", "--name", "two")
    result = gatewayctl("users", "delete", "alice")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Deleted user alice and revoked 2 virtual key(s) of theirs."
    assert run_json(gatewayctl, "keys", "list") == []


def test_users_delete_json_has_documented_shape(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    document = run_json(gatewayctl, "users", "delete", "alice")
    assert document == {"user": "alice", "revoked_keys": 0}
    assert set(document) == set(SHAPES["deleted user"])


def test_users_delete_unknown_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    assert "gatewayctl users list" in fails(gatewayctl, "users", "delete", "carol")


def test_users_limits_set_change_and_clear(gatewayctl: Gatewayctl) -> None:
    created = run_json(gatewayctl, "users", "create", "alice", "--requests-per-minute", "600")
    assert created["requests_per_minute"] == 600
    assert created["tokens_per_minute"] is None

    updated = run_json(gatewayctl, "users", "update", "alice", "--tokens-per-minute", "20000")
    assert updated["requests_per_minute"] == 600
    assert updated["tokens_per_minute"] == 20000

    cleared = run_json(gatewayctl, "users", "update", "alice", "--no-limits")
    assert cleared["requests_per_minute"] is None
    assert cleared["tokens_per_minute"] is None


def test_users_update_limits_and_no_limits_rejected(gatewayctl: Gatewayctl) -> None:
    gatewayctl("users", "create", "alice")
    error = fails(gatewayctl, "users", "update", "alice", "--no-limits", "--requests-per-minute", "5")
    assert error == "Error: Give either --no-limits or new limits, not both."


def test_users_create_zero_limit_is_bad_usage(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "create", "alice", "--tokens-per-minute", "0")
    assert result.exit_code == 2
    assert "--tokens-per-minute" in result.stderr
