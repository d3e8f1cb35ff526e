"""The `gatewayctl` root: global options, the command groups, and the one place errors are printed."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from weir import __version__
from weir.cli import apply, keys, logs, models, providers, serve, usage, users
from weir.cli.context import state
from weir.cli.output import print_error
from weir.errors import WeirError

app = typer.Typer(
    name="gatewayctl",
    help="Weir, an AI gateway: serve the proxy and administer keys, providers and models.\n\n"
         "Example: gatewayctl serve --listen 127.0.0.1:8080",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("migrate")(serve.migrate)
app.command("apply")(apply.apply)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(providers.app, name="providers")
app.add_typer(models.app, name="models")
app.add_typer(logs.app, name="logs")
app.command("usage")(usage.usage)


def _version(value: bool) -> None:
    if value:
        print(f"gatewayctl (Weir) {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", help="Config file (TOML). Default: $WEIR_CONFIG.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback when a command fails.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    cli_state = state(ctx)
    cli_state.config_path = config
    cli_state.debug = debug


def main(argv: list[str] | None = None) -> None:
    """Run `gatewayctl`: exit 0 on success, 1 on an error the user can fix, 2 on bad usage."""
    arguments = sys.argv[1:] if argv is None else argv
    debug = "--debug" in arguments
    try:
        app(args=arguments, prog_name="gatewayctl", standalone_mode=False)
    except WeirError as error:
        if debug:
            traceback.print_exc()
        print_error(str(error))
        sys.exit(1)
    except click.UsageError as error:
        error.show()
        sys.exit(2)
    except click.exceptions.Abort:
        print_error("Aborted.")
        sys.exit(1)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
