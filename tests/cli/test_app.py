"""The `gatewayctl` root: exit codes, one-line errors, and tracebacks only with --debug."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Gatewayctl, flat
from weir.storage import users as user_rows


def test_unknown_command_is_bad_usage(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.stderr


def test_missing_argument_is_bad_usage(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "show")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_user_error_is_one_line_without_traceback(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("users", "show", "carol")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_debug_shows_traceback(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("--debug", "users", "show", "carol")
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert flat(result.stderr).endswith("Error: No user named 'carol'. List users with `gatewayctl users list`.")


def test_version_exits_zero(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("gatewayctl (Weir) ")


def test_help_lists_every_command_group(gatewayctl: Gatewayctl) -> None:
    result = gatewayctl("--help")
    assert result.exit_code == 0
    for group in ("users", "groups", "keys", "providers", "models", "doctor"):
        assert group in result.stdout


def test_unexpected_error_hides_its_message(gatewayctl: Gatewayctl, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(connection: object) -> None:
        raise RuntimeError("postgresql://weir:hunter2@127.0.0.1/weir")

    monkeypatch.setattr(user_rows, "list_users", broken)
    result = gatewayctl("users", "list")
    assert result.exit_code == 1
    assert flat(result.stderr) == ("Error: Unexpected RuntimeError. Run again with --debug for the traceback, "
                                   "and report it as a bug.")


def test_square_brackets_in_names_are_printed_verbatim(gatewayctl: Gatewayctl) -> None:
    created = gatewayctl("groups", "create", "[bold]team[/]")
    assert flat(created.stdout) == "Created group [bold]team[/]."
    assert "[bold]team[/]" in gatewayctl("groups", "list").stdout
    error = gatewayctl("groups", "show", "[/]")
    assert flat(error.stderr) == "Error: No group named '[/]'. List groups with `gatewayctl groups list`."
