"""`gatewayctl apply FILE`: reconcile a config file's providers, models, groups and users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weir.cli.context import database, state
from weir.cli.output import console, print_json
from weir.config.loader import load_config
from weir.config.reconcile import apply_spec
from weir.config.runtime import credential_box


def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The config file to apply (TOML).")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of sentences.")] = False,
) -> None:
    """Create or update what FILE declares. Secrets come from env: and file: references.

    Example: gatewayctl apply gateway.toml
    """
    spec = load_config(file)
    cli_state = state(ctx)
    if cli_state.config_path is None:
        cli_state.config_path = file  # the file's [database] section applies to this run too
    with database(ctx) as connection:
        report = apply_spec(connection, spec, credential_box())
    if json:
        print_json([{"action": action, "kind": kind, "name": name} for action, kind, name in report.changes])
        return
    for action, kind, name in report.changes:
        console.print(f"{action.capitalize()} {kind} {name}", highlight=False)
    console.print(f"Applied {file}: {len(report.changes)} entities.", highlight=False)
