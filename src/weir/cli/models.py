"""`gatewayctl models`: model aliases and the deployments behind them."""

from __future__ import annotations

import math
from typing import Annotated, Optional

import typer

from weir.cli.context import database
from weir.cli.documents import alias_document
from weir.cli.output import console, print_json, print_result, print_table
from weir.errors import InvalidInput
from weir.storage import aliases as alias_rows
from weir.storage.aliases import AliasFields, DeploymentFields

app = typer.Typer(
    help="Add, inspect, change and remove model aliases and their deployments.\n\n"
         "Example: gatewayctl models show chat",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
AliasArgument = Annotated[str, typer.Argument(help="The model alias, as clients send it in `model`.")]
STRATEGIES = ("weighted", "least-busy")
DEPLOYMENT_FORM = "PROVIDER/MODEL[,weight=N][,timeout=SECONDS][,connect_timeout=SECONDS]"


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
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise InvalidInput(f"--deployment {text!r}: {name.strip()} must be a number.")
        values[name.strip()] = number
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
    print_result(alias_document(row), json,
                 f"Added model alias {row.name} with {len(row.deployments)} deployment(s).")


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


@app.command("show")
def show(ctx: typer.Context, alias: AliasArgument, json: JsonOption = False) -> None:
    """Show one model alias and its deployments.

    Example: gatewayctl models show chat
    """
    with database(ctx) as connection:
        row = alias_rows.get_alias(connection, alias)
    if json:
        print_json(alias_document(row))
        return
    print_table(f"Deployments of model alias {row.name} ({row.strategy})",
                ["Provider", "Upstream model", "Weight", "Timeout (s)", "Connect timeout (s)"],
                [(d.provider, d.upstream_model, d.weight, f"{d.timeout_seconds:g}", f"{d.connect_timeout_seconds:g}")
                 for d in row.deployments])
    console.print(f"Fallbacks: {', '.join(row.fallbacks) or 'none'}. Attempts per request: {row.max_attempts}. "
                  f"Source: {row.source}.", highlight=False)


@app.command("update")
def update(
    ctx: typer.Context,
    alias: AliasArgument,
    deployment: Annotated[Optional[list[str]], typer.Option("--deployment", help=f"A deployment: {DEPLOYMENT_FORM}. Repeat for several; replaces all deployments.")] = None,
    strategy: Annotated[Optional[str], typer.Option("--strategy", help="How a deployment is picked: weighted or least-busy.")] = None,
    fallback: Annotated[Optional[list[str]], typer.Option("--fallback", help="An alias to try when every deployment fails; repeat for several. Replaces the fallbacks.")] = None,
    max_attempts: Annotated[Optional[int], typer.Option("--max-attempts", min=1, help="Maximum deployments tried per request.")] = None,
    json: JsonOption = False,
) -> None:
    """Change an alias's deployments or routing; what is not given stays as it is.

    Example: gatewayctl models update chat --deployment openai/gpt-4o-mini,weight=1,timeout=120
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidInput(f"--strategy {strategy!r} is not a strategy. Use one of: {', '.join(STRATEGIES)}.")
    if deployment is None and strategy is None and fallback is None and max_attempts is None:
        raise InvalidInput("Nothing to change: give --deployment, --strategy, --fallback or --max-attempts.")
    deployments = None if deployment is None else [parse_deployment(text) for text in deployment]
    with database(ctx) as connection:
        for name in fallback or []:
            alias_rows.get_alias_id(connection, name)
        alias_rows.update_alias(connection, alias, AliasFields(strategy=strategy, fallbacks=fallback,
                                                               max_attempts=max_attempts))
        if deployments is not None:
            alias_rows.replace_deployments(connection, alias, deployments)
        row = alias_rows.get_alias(connection, alias)
    print_result(alias_document(row), json,
                 f"Updated model alias {row.name}: {len(row.deployments)} deployment(s), "
                 f"strategy {row.strategy}.")


@app.command("remove")
def remove(ctx: typer.Context, alias: AliasArgument, json: JsonOption = False) -> None:
    """Remove a model alias with its deployments and group grants.

    Example: gatewayctl models remove chat
    """
    with database(ctx) as connection:
        row = alias_rows.get_alias(connection, alias)
        alias_rows.remove_alias(connection, alias)
    print_result({"alias": alias, "removed_deployments": len(row.deployments)}, json,
                 f"Removed model alias {alias} and its {len(row.deployments)} deployment(s).")
