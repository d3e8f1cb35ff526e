"""The generated CLI reference: docs/cli.md must match the command tree, and every command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from weir.cli.app import app
from weir.cli.reference import render_reference, walk

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMANDS = list(walk(typer.main.get_command(app), ("gatewayctl",)))


def test_reference_matches_generated_output() -> None:
    assert REFERENCE.read_text() == render_reference(), (
        "docs/cli.md is out of date: run `python -m weir.cli.reference > docs/cli.md`."
    )


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_reference_documents_command_and_options(path: tuple[str, ...], command: typer.core.TyperCommand) -> None:
    reference = REFERENCE.read_text()
    assert f"## {' '.join(path)}\n" in reference
    for parameter in command.params:
        for option in parameter.opts:
            if option.startswith("-"):
                assert f"`{option}" in reference.split(f"## {' '.join(path)}\n")[1].split("\n## ")[0]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(path) for path, _ in COMMANDS])
def test_every_command_has_help_and_example(path: tuple[str, ...], command: typer.core.TyperCommand) -> None:
    assert command.help, f"{' '.join(path)} has no help text"
    assert "Example: gatewayctl " in command.help, f"{' '.join(path)} has no example"
    for parameter in command.params:
        assert getattr(parameter, "help", None), f"{' '.join(path)} {parameter.name} has no help text"


def test_expected_commands_exist() -> None:
    paths = {" ".join(path[1:]) for path, _ in COMMANDS}
    expected = {
        "users create", "users list", "users show", "users update", "users delete",
        "groups create", "groups list", "groups show", "groups add-member", "groups remove-member",
        "groups grant", "groups revoke", "groups delete",
        "keys create", "keys list", "keys show", "keys revoke", "keys rotate",
        "providers add", "providers list", "providers show", "providers update", "providers remove",
        "providers test", "models add", "models list", "models show", "models update", "models remove", "doctor",
    }
    assert expected <= paths, expected - paths
