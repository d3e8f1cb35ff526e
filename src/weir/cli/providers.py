"""`gatewayctl providers`: upstream accounts and their credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from weir.admin.providers import provider_fields
from weir.cli.context import database
from weir.cli.output import console, isoformat, print_json, print_table
from weir.config.runtime import credential_box
from weir.errors import InvalidInput
from weir.storage import providers as provider_rows
from weir.storage.providers import ProviderRow

app = typer.Typer(help="Add and list providers: upstream accounts with encrypted credentials.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def provider_document(provider: ProviderRow) -> dict[str, object]:
    return {
        "id": provider.id, "name": provider.name, "kind": provider.kind, "base_url": provider.base_url,
        "has_credential": provider.credential is not None, "headers": provider.headers,
        "api_version": provider.api_version, "enabled": provider.enabled, "source": provider.source,
        "created_at": isoformat(provider.created_at),
    }


def read_credential(credential_env: str | None, credential_file: Path | None, prompt: bool) -> str | None:
    """Read a credential from an environment variable, a file, or a prompt without echo."""
    if credential_env:
        value = os.environ.get(credential_env)
        if not value:
            raise InvalidInput(f"--credential-env {credential_env}: that environment variable is not set.")
        return value
    if credential_file:
        try:
            return credential_file.read_text().strip()
        except OSError as error:
            raise InvalidInput(f"--credential-file {credential_file} cannot be read: {error.strerror}.") from None
    if prompt:
        return str(typer.prompt("Credential", hide_input=True))
    return None


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name for the provider.")],
    kind: Annotated[str, typer.Option(help="openai, openai-compatible, anthropic or azure.")],
    base_url: Annotated[str, typer.Option("--base-url", help="The API base URL, e.g. https://api.openai.com/v1.")],
    credential_env: Annotated[Optional[str], typer.Option("--credential-env", help="Read the credential from this environment variable.")] = None,
    credential_file: Annotated[Optional[Path], typer.Option("--credential-file", help="Read the credential from this file.")] = None,
    prompt_credential: Annotated[bool, typer.Option("--prompt-credential", help="Prompt for the credential without echo.")] = False,
    api_version: Annotated[Optional[str], typer.Option("--api-version", help="Azure api-version or anthropic-version.")] = None,
    json: JsonOption = False,
) -> None:
    """Add a provider. The credential is encrypted before it is stored.

    Example: gatewayctl providers add openai --kind openai --base-url https://api.openai.com/v1 --credential-env OPENAI_API_KEY
    """
    credential = read_credential(credential_env, credential_file, prompt_credential)
    fields = provider_fields(credential_box(), kind=kind, base_url=base_url, credential=credential,
                             api_version=api_version)
    with database(ctx) as connection:
        provider = provider_rows.create_provider(connection, name, fields)
    if json:
        print_json(provider_document(provider))
    else:
        console.print(f"Added provider {provider.name} ({provider.kind}, {provider.base_url}).", highlight=False)


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List providers; credentials are never shown.

    Example: gatewayctl providers list --json
    """
    with database(ctx) as connection:
        providers = provider_rows.list_providers(connection)
    if json:
        print_json([provider_document(p) for p in providers])
    else:
        print_table("Providers", ["Name", "Kind", "Base URL", "Credential", "Enabled", "Source"],
                    [(p.name, p.kind, p.base_url, "set" if p.credential else "none", p.enabled, p.source)
                     for p in providers])
