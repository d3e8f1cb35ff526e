"""`gatewayctl providers`: upstream accounts and their credentials.

A credential is read from an environment variable, a file, or a prompt
without echo. No flag takes the credential itself, so it never lands in shell
history, and no output of these commands contains it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from weir.admin.provider_probe import probe_provider
from weir.admin.providers import provider_fields
from weir.cli.context import database
from weir.cli.documents import probe_document, provider_document
from weir.cli.output import console, print_json, print_result, print_table
from weir.config.runtime import credential_box
from weir.errors import InvalidInput, UpstreamError
from weir.storage import providers as provider_rows

app = typer.Typer(
    help="Add, inspect, change, test and remove providers: upstream accounts with encrypted credentials.\n\n"
         "Example: gatewayctl providers test openai",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
NameArgument = Annotated[str, typer.Argument(help="The provider's unique name.")]
CredentialEnvOption = Annotated[Optional[str], typer.Option("--credential-env", help="Read the credential from this environment variable.")]
CredentialFileOption = Annotated[Optional[Path], typer.Option("--credential-file", help="Read the credential from this file.")]
PromptOption = Annotated[bool, typer.Option("--prompt-credential", help="Prompt for the credential without echo.")]
HeaderOption = Annotated[Optional[list[str]], typer.Option("--header", help="An extra header sent upstream, as NAME=VALUE; repeat for several.")]
ApiVersionOption = Annotated[Optional[str], typer.Option("--api-version", help="Azure api-version or anthropic-version.")]


def read_credential(credential_env: str | None, credential_file: Path | None, prompt: bool) -> str | None:
    """Read a credential from an environment variable, a file, or a prompt without echo."""
    if sum((credential_env is not None, credential_file is not None, prompt)) > 1:
        raise InvalidInput("Give only one of --credential-env, --credential-file and --prompt-credential.")
    if credential_env:
        value = os.environ.get(credential_env)
        if not value:
            raise InvalidInput(f"--credential-env {credential_env}: that environment variable is not set.")
        return value
    if credential_file:
        try:
            value = credential_file.read_text().strip()
        except OSError as error:
            raise InvalidInput(f"--credential-file {credential_file} cannot be read: {error.strerror}.") from None
        if not value:
            raise InvalidInput(f"--credential-file {credential_file} is empty.")
        return value
    if prompt:
        return str(typer.prompt("Credential", hide_input=True))
    return None


def parse_headers(headers: list[str] | None) -> dict[str, str] | None:
    """Parse repeated `--header NAME=VALUE` options; None when none were given."""
    if headers is None:
        return None
    parsed = {}
    for header in headers:
        name, separator, value = header.partition("=")
        if not separator or not name.strip():
            raise InvalidInput(f"--header {name.strip()!r} is not of the form NAME=VALUE.")
        parsed[name.strip()] = value.strip()
    return parsed


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArgument,
    kind: Annotated[str, typer.Option(help="openai, openai-compatible, anthropic or azure.")],
    base_url: Annotated[str, typer.Option("--base-url", help="The API base URL, e.g. https://api.openai.com/v1.")],
    credential_env: CredentialEnvOption = None,
    credential_file: CredentialFileOption = None,
    prompt_credential: PromptOption = False,
    header: HeaderOption = None,
    api_version: ApiVersionOption = None,
    json: JsonOption = False,
) -> None:
    """Add a provider. The credential is encrypted before it is stored.

    Example: gatewayctl providers add openai --kind openai --base-url https://api.openai.com/v1 --credential-env OPENAI_API_KEY
    """
    credential = read_credential(credential_env, credential_file, prompt_credential)
    fields = provider_fields(credential_box(), kind=kind, base_url=base_url, credential=credential,
                             headers=parse_headers(header), api_version=api_version)
    with database(ctx) as connection:
        provider = provider_rows.create_provider(connection, name, fields)
    print_result(provider_document(provider), json,
                 f"Added provider {provider.name} ({provider.kind}, {provider.base_url}).")


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


@app.command("show")
def show(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Show one provider and the deployments that use it; the credential is never shown.

    Example: gatewayctl providers show openai
    """
    with database(ctx) as connection:
        provider = provider_rows.get_provider(connection, name)
        used_by = provider_rows.deployments_using(connection, name)
    if json:
        print_json(provider_document(provider))
        return
    print_table(f"Provider {provider.name}", ["Field", "Value"], [
        ("Kind", provider.kind), ("Base URL", provider.base_url),
        ("Credential", "set (encrypted)" if provider.credential else "none"),
        ("Headers", [f"{k}={v}" for k, v in provider.headers.items()]), ("API version", provider.api_version),
        ("Enabled", provider.enabled), ("Deployments", used_by), ("Source", provider.source),
        ("Created", provider.created_at),
    ])


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArgument,
    kind: Annotated[Optional[str], typer.Option(help="openai, openai-compatible, anthropic or azure.")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="The API base URL.")] = None,
    credential_env: CredentialEnvOption = None,
    credential_file: CredentialFileOption = None,
    prompt_credential: PromptOption = False,
    no_credential: Annotated[bool, typer.Option("--no-credential", help="Remove the stored credential.")] = False,
    header: Annotated[Optional[list[str]], typer.Option("--header", help="An extra header as NAME=VALUE; repeat for several. Replaces all extra headers.")] = None,
    api_version: ApiVersionOption = None,
    enabled: Annotated[Optional[bool], typer.Option("--enable/--disable", help="Let the proxy use this provider, or not.")] = None,
    json: JsonOption = False,
) -> None:
    """Change a provider's settings; what is not given stays as it is.

    Example: gatewayctl providers update openai --credential-file /run/secrets/openai
    """
    credential = read_credential(credential_env, credential_file, prompt_credential)
    if no_credential and credential is not None:
        raise InvalidInput("Give either --no-credential or a new credential, not both.")
    fields = provider_fields(credential_box(), kind=kind, base_url=base_url, credential=credential,
                             headers=parse_headers(header), api_version=api_version, enabled=enabled)
    with database(ctx) as connection:
        provider = provider_rows.update_provider(connection, name, fields, clear_credential=no_credential)
    print_result(provider_document(provider), json,
                 f"Updated provider {provider.name} ({provider.kind}, {provider.base_url}).")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArgument,
    force: Annotated[bool, typer.Option("--force", help="Also remove the deployments that use this provider.")] = False,
    json: JsonOption = False,
) -> None:
    """Remove a provider. Refused while deployments use it, unless --force.

    Example: gatewayctl providers remove old-vllm --force
    """
    with database(ctx) as connection:
        removed = provider_rows.remove_provider(connection, name, force=force)
    if removed:
        sentence = (f"Removed provider {name} and {len(removed)} deployment(s) that used it: "
                    f"{', '.join(removed)}.")
    else:
        sentence = f"Removed provider {name}."
    print_result({"provider": name, "removed_deployments": removed}, json, sentence)


@app.command("test")
def test(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Call the provider's model list once and report the status and latency.

    Example: gatewayctl providers test openai
    """
    with database(ctx) as connection:
        provider = provider_rows.get_provider(connection, name)
    result = probe_provider(provider, credential_box())
    if json:
        print_json(probe_document(result))
    if not result.ok:
        raise UpstreamError(result.describe())
    if not json:
        console.print(result.describe(), highlight=False)
