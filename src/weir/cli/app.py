"""The `gatewayctl` root: global options, the command groups, and the one place errors are printed."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

# typer 0.29 vendors click as typer._click and does not re-export these classes.
from typer._click.exceptions import ClickException, UsageError

from weir import __version__
from weir.cli import apply, doctor, groups, keys, logs, models, providers, serve, usage, users
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
app.command("doctor")(doctor.doctor)
app.add_typer(users.app, name="users")
app.add_typer(groups.app, name="groups")
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
        # Without standalone mode, typer returns the code of a `typer.Exit` instead of raising it.
        code = app(args=arguments, prog_name="gatewayctl", standalone_mode=False)
    except WeirError as error:
        if debug:
            traceback.print_exc()
        print_error(str(error))
        sys.exit(1)
    except UsageError as error:
        error.show()
        sys.exit(2)
    except ClickException as error:
        print_error(error.format_message())
        sys.exit(1)
    except typer.Abort:
        print_error("Aborted.")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        # A bug rather than a user's mistake. Only the type is shown, because
        # a driver's message may quote values that must not reach a terminal.
        if debug:
            traceback.print_exc()
        print_error(f"Unexpected {type(error).__name__}. Run again with --debug for the traceback, "
                    "and report it as a bug.")
        sys.exit(1)
    if isinstance(code, int) and code != 0:
        sys.exit(code)
