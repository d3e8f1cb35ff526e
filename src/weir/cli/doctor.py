"""`gatewayctl doctor`: check config, database, secret key and providers, one line per check."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.text import Text

from weir.admin.doctor import Check, check_credentials, check_providers, check_schema
from weir.cli.context import state
from weir.cli.documents import doctor_document
from weir.cli.output import console, print_json
from weir.config.loader import CONFIG_ENV
from weir.config.runtime import credential_box
from weir.errors import WeirError
from weir.storage.database import connect


def doctor(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of lines.")] = False,
) -> None:
    """Check the config, the database and its migration level, the secret key, and every enabled provider.

    Exits 1 when any check fails. Each enabled provider gets one GET of its model list.

    Example: gatewayctl doctor
    """
    checks = run_checks(ctx)
    if json:
        print_json(doctor_document(checks))
    else:
        for check in checks:
            mark = Text("ok  ", style="green") if check.ok else Text("FAIL", style="red")
            console.print(mark, f"{check.name}: {check.detail}", highlight=False, soft_wrap=True)
    failed = [check.name for check in checks if not check.ok]
    if failed:
        raise WeirError(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}.")


def run_checks(ctx: typer.Context) -> list[Check]:
    """Run every check that the earlier ones allow; a failed config or database stops the rest."""
    cli_state = state(ctx)
    try:
        spec = cli_state.spec
    except WeirError as error:
        return [Check("config", False, str(error))]
    source = cli_state.config_path or os.environ.get(CONFIG_ENV)
    read = f"Read {source}." if source else "No config file, so defaults and the environment apply."
    checks = [Check("config", True, f"{read} The proxy would listen on {spec.server.listen}.")]

    try:
        url = cli_state.database_url()
    except WeirError as error:
        return [*checks, Check("database", False, str(error))]
    checks.append(check_schema(url))
    if not checks[-1].ok:
        return checks
    try:
        box = credential_box()
    except WeirError as error:
        return [*checks, Check("secret key", False, str(error))]
    with connect(url) as connection:
        checks.append(check_credentials(connection, box))
        checks.extend(check_providers(connection, box))
    return checks
