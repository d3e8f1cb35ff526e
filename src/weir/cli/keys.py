"""`gatewayctl keys`: issue, inspect, rotate and revoke virtual keys. A secret is printed once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from weir.admin.durations import parse_duration, parse_expiry
from weir.admin.keys import IssuedKey, KeyLimits, issue_key, rotate
from weir.cli.context import database, state
from weir.cli.documents import key_document
from weir.cli.output import console, print_json, print_result, print_table
from weir.storage import virtual_keys
from weir.storage.virtual_keys import VirtualKeyRow

app = typer.Typer(
    help="Issue, list, show, rotate and revoke virtual keys.\n\n"
         "Example: gatewayctl keys create --user alice --expires-in 30d",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
KeyArgument = Annotated[str, typer.Argument(help="The key's ID or prefix, as `keys list` shows.")]


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The user who owns the key.")],
    name: Annotated[str, typer.Option("--name", help="A name for the key, unique per user.")] = "default",
    expires_in: Annotated[Optional[str], typer.Option("--expires-in", help="Lifetime (90s, 12h, 30d) or an expiry date (2027-01-31).")] = None,
    alias: Annotated[Optional[list[str]], typer.Option("--alias", help="Limit the key to this model alias; repeat for several. Default: all its user's aliases.")] = None,
    requests_per_minute: Annotated[Optional[int], typer.Option("--requests-per-minute", min=1, help="Maximum requests per minute for this key.")] = None,
    tokens_per_minute: Annotated[Optional[int], typer.Option("--tokens-per-minute", min=1, help="Maximum tokens per minute for this key.")] = None,
    json: JsonOption = False,
) -> None:
    """Issue a virtual key. Its secret is printed once and never again.

    Example: gatewayctl keys create --user alice --name laptop --expires-in 30d --requests-per-minute 60
    """
    expires_at = parse_expiry(expires_in) if expires_in else None
    limits = KeyLimits(requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute)
    with database(ctx) as connection:
        issued = issue_key(connection, user, name, expires_at=expires_at, allowed_aliases=alias or None,
                           limits=limits)
    if json:
        print_json({**key_document(issued.row), "key": issued.secret})
    else:
        print_issued_key(ctx, issued, "Issued")


def print_issued_key(ctx: typer.Context, issued: IssuedKey, verb: str) -> None:
    listen = state(ctx).spec.server.listen
    base_url = f"http://{listen}/v1"
    console.print(f"{verb} key {issued.row.prefix}… (ID {issued.row.id}) for user {issued.row.user}. "
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


@app.command("show")
def show(ctx: typer.Context, key: KeyArgument, json: JsonOption = False) -> None:
    """Show one virtual key: owner, aliases, expiry and limits. The secret is never shown.

    Example: gatewayctl keys show wr-AbCdEf12
    """
    with database(ctx) as connection:
        row = virtual_keys.get_key(connection, key)
    if json:
        print_json(key_document(row))
    else:
        print_key(row)


@app.command("rotate")
def rotate_(
    ctx: typer.Context,
    key: KeyArgument,
    grace: Annotated[Optional[str], typer.Option("--grace", help="Keep the old secret valid this long (90s, 10m, 1h). Default: it stops at once.")] = None,
    json: JsonOption = False,
) -> None:
    """Give a virtual key a new secret, printed once. Owner, aliases and limits stay.

    Example: gatewayctl keys rotate wr-AbCdEf12 --grace 10m
    """
    grace_period = parse_duration(grace, "--grace") if grace else None
    with database(ctx) as connection:
        issued = rotate(connection, key, grace_period)
    if json:
        print_json({**key_document(issued.row), "key": issued.secret})
        return
    print_issued_key(ctx, issued, "Rotated")
    if issued.row.previous_expires_at is not None:
        console.print(f"The old secret stays valid until {issued.row.previous_expires_at:%Y-%m-%d %H:%M:%S %Z}.",
                      highlight=False)
    else:
        console.print("The old secret no longer works.", highlight=False)


@app.command("revoke")
def revoke(ctx: typer.Context, key: KeyArgument, json: JsonOption = False) -> None:
    """Revoke a virtual key; it stops working on every serve worker within a second.

    Example: gatewayctl keys revoke wr-AbCdEf12
    """
    with database(ctx) as connection:
        row = virtual_keys.revoke_key(connection, key)
    print_result(key_document(row), json, f"Revoked key {row.prefix}… (ID {row.id}) of user {row.user}.")


def print_key(key: VirtualKeyRow) -> None:
    print_table(f"Virtual key {key.prefix}…", ["Field", "Value"], [
        ("ID", key.id), ("User", key.user), ("Name", key.name),
        ("Aliases", key.allowed_aliases or "all its user's aliases"),
        ("Expires", key.expires_at or "never"), ("Revoked", key.revoked_at),
        ("Old secret valid until", key.previous_expires_at),
        ("Requests per minute", key.requests_per_minute or "no limit of its own"),
        ("Tokens per minute", key.tokens_per_minute or "no limit of its own"),
        ("Created", key.created_at),
    ])
