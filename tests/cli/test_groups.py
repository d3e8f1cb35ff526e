"""`gatewayctl groups`: membership and alias grants, with --json and bad input."""

from __future__ import annotations

from tests.cli.conftest import Gatewayctl, fails, flat, run_json
from weir.cli.documents import SHAPES


def test_groups_create_prints_sentence(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("groups", "create", "engineering")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Created group engineering."


def test_groups_create_json_has_documented_shape(gatewayctl: Gatewayctl) -> None:
    document = run_json(gatewayctl, "groups", "create", "engineering")
    assert set(document) == set(SHAPES["group"])
    assert document["members"] == []
    assert document["aliases"] == []


def test_groups_create_duplicate_names_conflict(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    assert fails(gatewayctl, "groups", "create", "engineering") == "Error: A group named 'engineering' already exists."


def test_groups_members_and_grants_round_trip(gatewayctl: Gatewayctl, alias: str) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("users", "create", "alice")
    gatewayctl("users", "create", "bob")

    added = gatewayctl("groups", "add-member", "engineering", "alice")
    assert flat(added.stdout) == "Added user alice to group engineering."
    gatewayctl("groups", "add-member", "engineering", "bob")
    granted = gatewayctl("groups", "grant", "engineering", alias)
    assert flat(granted.stdout) == "Granted model alias chat to group engineering."
    document = run_json(gatewayctl, "groups", "show", "engineering")
    assert document["members"] == ["alice", "bob"]
    assert document["aliases"] == ["chat"]

    removed = run_json(gatewayctl, "groups", "remove-member", "engineering", "bob")
    assert removed["members"] == ["alice"]
    revoked = run_json(gatewayctl, "groups", "revoke", "engineering", alias)
    assert revoked["aliases"] == []


def test_groups_add_member_twice_is_harmless(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("users", "create", "alice")
    gatewayctl("groups", "add-member", "engineering", "alice")
    assert run_json(gatewayctl, "groups", "add-member", "engineering", "alice")["members"] == ["alice"]


def test_groups_list_shows_table_and_json(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "research")
    gatewayctl("groups", "create", "engineering")
    table = gatewayctl("groups", "list")
    assert table.exit_code == 0
    assert "research" in table.stdout
    assert [group["name"] for group in run_json(gatewayctl, "groups", "list")] == ["engineering", "research"]


def test_groups_show_prints_members(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("users", "create", "alice", "--group", "engineering")
    result = gatewayctl("groups", "show", "engineering")
    assert result.exit_code == 0
    assert "alice" in result.stdout


def test_groups_unknown_group_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    for command in (("show", "nobody"), ("delete", "nobody"), ("add-member", "nobody", "alice"),
                    ("grant", "nobody", "chat")):
        error = fails(gatewayctl, "groups", *command)
        assert error == "Error: No group named 'nobody'. List groups with `gatewayctl groups list`.", command


def test_groups_add_member_unknown_user(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    error = fails(gatewayctl, "groups", "add-member", "engineering", "carol")
    assert error == "Error: No user named 'carol'. List users with `gatewayctl users list`."


def test_groups_grant_unknown_alias_says_how_to_list(gatewayctl: Gatewayctl) -> None:
    gatewayctl("groups", "create", "engineering")
    error = fails(gatewayctl, "groups", "grant", "engineering", "gpt-9")
    assert error == "Error: No model alias named 'gpt-9'. List aliases with `gatewayctl models list`."


def test_groups_delete_keeps_users_and_aliases(gatewayctl: Gatewayctl, alias: str) -> None:
    gatewayctl("groups", "create", "engineering")
    gatewayctl("users", "create", "alice", "--group", "engineering")
    gatewayctl("groups", "grant", "engineering", alias)
    result = gatewayctl("groups", "delete", "engineering")
    assert result.exit_code == 0
    assert flat(result.stdout) == "Deleted group engineering (1 member(s), 1 granted alias(es))."
    assert run_json(gatewayctl, "groups", "list") == []
    assert run_json(gatewayctl, "users", "show", "alice")["groups"] == []
    assert run_json(gatewayctl, "models", "show", alias)["alias"] == alias
