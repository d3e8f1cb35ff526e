"""`gatewayctl keys`: issue, list and revoke virtual keys. A secret is printed once, at creation."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from weir.admin.durations import parse_expiry
from weir.admin.keys import IssuedKey, issue_key
from weir.cli.context import database, state
from weir.cli.output import console, isoformat, print_json, print_table
from weir.storage import virtual_keys
from weir.storage.virtual_keys import VirtualKeyRow

app = typer.Typer(help="Issue, list and revoke virtual keys.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def key_document(key: VirtualKeyRow) -> dict[str, object]:
    return {
        "id": key.id, "user": key.user, "name": key.name, "prefix": key.prefix,
        "allowed_aliases": key.allowed_aliases, "expires_at": isoformat(key.expires_at),
        "revoked_at": isoformat(key.revoked_at), "created_at": isoformat(key.created_at),
    }


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The user who owns the key.")],
    name: Annotated[str, typer.Option("--name", help="A name for the key, unique per user.")] = "default",
    expires_in: Annotated[Optional[str], typer.Option("--expires-in", help="Lifetime (90s, 12h, 30d) or an expiry date (2027-01-31).")] = None,
    alias: Annotated[Optional[list[str]], typer.Option("--alias", help="Limit the key to this model alias; repeat for several. Default: all its user's aliases.")] = None,
    json: JsonOption = False,
) -> None:
    """Issue a virtual key. Its secret is printed once and never again.

    Example: gatewayctl keys create --user alice --name laptop --expires-in 30d
    """
    expires_at = parse_expiry(expires_in) if expires_in else None
    with database(ctx) as connection:
        issued = issue_key(connection, user, name, expires_at=expires_at, allowed_aliases=alias or None)
    if json:
        print_json({**key_document(issued.row), "key": issued.secret})
    else:
        print_issued_key(ctx, issued)


def print_issued_key(ctx: typer.Context, issued: IssuedKey) -> None:
    listen = state(ctx).spec.server.listen
    base_url = f"http://{listen}/v1"
    console.print(f"Issued key {issued.row.prefix}… (ID {issued.row.id}) for user {issued.row.user}. "
                  "Copy it now: it is not shown again.", highlight=False)
    console.print(f"\n  {issued.secret}\n", style="bold", highlight=False)
    console.print("Try it:", highlight=False)
    console.print(f"  curl {base_url}/models -H 'Authorization: Bearer {issued.secret}'", highlight=False, markup=False, soft_wrap=True)
    console.print(f"  python -c \"from openai import OpenAI; print([m.id for m in OpenAI(base_url='{base_url}', "
                  f"api_key='{issued.secret}').models.list()])\"", highlight=False, markup=False, soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    user: Annotated[Optional[str], typer.Option("--user", help="Only this user's keys.")] = None,
    json: JsonOption = False,
) -> None:
    """List virtual keys by prefix; secrets are never shown.

    Example: gatewayctl keys list --user alice
    """
    with database(ctx) as connection:
        keys = virtual_keys.list_keys(connection, user)
    if json:
        print_json([key_document(key) for key in keys])
    else:
        print_table("Virtual keys", ["ID", "Prefix", "User", "Name", "Aliases", "Expires", "Revoked"],
                    [(k.id, k.prefix, k.user, k.name, k.allowed_aliases or "all granted", k.expires_at,
                      k.revoked_at) for k in keys])


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's ID or prefix, as `keys list` shows.")],
    json: JsonOption = False,
) -> None:
    """Revoke a virtual key; it stops working on every serve worker within a second.

    Example: gatewayctl keys revoke wr-AbCdEf12
    """
    with database(ctx) as connection:
        row = virtual_keys.revoke_key(connection, key)
    if json:
        print_json(key_document(row))
    else:
        console.print(f"Revoked key {row.prefix}… (ID {row.id}) of user {row.user}.", highlight=False)
