"""`gatewayctl models`: model aliases and the deployments behind them."""

from __future__ import annotations

from typing import Annotated

import typer

from weir.cli.context import database
from weir.cli.output import console, isoformat, print_json, print_table
from weir.errors import InvalidInput
from weir.storage import aliases as alias_rows
from weir.storage.aliases import AliasFields, AliasRow, DeploymentFields

app = typer.Typer(help="Add and list model aliases and their deployments.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
DEPLOYMENT_FORM = "PROVIDER/MODEL[,weight=N][,timeout=SECONDS][,connect_timeout=SECONDS]"


def alias_document(alias: AliasRow) -> dict[str, object]:
    return {
        "id": alias.id, "alias": alias.name, "strategy": alias.strategy, "fallbacks": alias.fallbacks,
        "max_attempts": alias.max_attempts, "retry_on": alias.retry_on, "source": alias.source,
        "created_at": isoformat(alias.created_at),
        "deployments": [
            {"provider": d.provider, "model": d.upstream_model, "weight": d.weight,
             "timeout": d.timeout_seconds, "connect_timeout": d.connect_timeout_seconds}
            for d in alias.deployments
        ],
    }


def parse_deployment(text: str) -> DeploymentFields:
    """Parse `--deployment` in the form PROVIDER/MODEL[,weight=N][,timeout=S][,connect_timeout=S]."""
    target, *settings = text.split(",")
    provider, _, model = target.partition("/")
    if not provider or not model:
        raise InvalidInput(f"--deployment {text!r} is not of the form {DEPLOYMENT_FORM}.")
    values: dict[str, float] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name.strip() not in ("weight", "timeout", "connect_timeout"):
            raise InvalidInput(f"--deployment {text!r}: unknown setting {name!r}. Form: {DEPLOYMENT_FORM}.")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise InvalidInput(f"--deployment {text!r}: {name.strip()} must be a number.") from None
    weight = values.get("weight", 1)
    if weight < 0 or weight != int(weight):
        raise InvalidInput(f"--deployment {text!r}: weight must be a whole number, 0 or more.")
    if values.get("timeout", 1) <= 0 or values.get("connect_timeout", 1) <= 0:
        raise InvalidInput(f"--deployment {text!r}: timeouts must be more than 0 seconds.")
    return DeploymentFields(provider=provider, upstream_model=model, weight=int(weight),
                            timeout_seconds=values.get("timeout", 600.0),
                            connect_timeout_seconds=values.get("connect_timeout", 10.0))


@app.command("add")
def add(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="The model name clients will send.")],
    deployment: Annotated[list[str], typer.Option("--deployment", help=f"A deployment: {DEPLOYMENT_FORM}. Repeat for several.")],
    json: JsonOption = False,
) -> None:
    """Add a model alias with one or more deployments.

    Example: gatewayctl models add chat --deployment openai/gpt-4o-mini,weight=3 --deployment azure/gpt-4o-mini
    """
    deployments = [parse_deployment(text) for text in deployment]
    with database(ctx) as connection:
        row = alias_rows.create_alias(connection, alias, AliasFields(), deployments)
    if json:
        print_json(alias_document(row))
    else:
        console.print(f"Added model alias {row.name} with {len(row.deployments)} deployment(s).", highlight=False)


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List model aliases and their deployments.

    Example: gatewayctl models list --json
    """
    with database(ctx) as connection:
        aliases = alias_rows.list_aliases(connection)
    if json:
        print_json([alias_document(a) for a in aliases])
    else:
        print_table("Model aliases", ["Alias", "Deployments", "Strategy", "Fallbacks", "Source"],
                    [(a.name, [f"{d.provider}/{d.upstream_model} (weight {d.weight})" for d in a.deployments],
                      a.strategy, a.fallbacks, a.source) for a in aliases])
