"""`gatewayctl users`: people and services that own virtual keys."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from weir.cli.context import database
from weir.cli.documents import user_document
from weir.cli.output import print_json, print_result, print_table
from weir.errors import InvalidInput
from weir.storage import groups as group_rows
from weir.storage import rate_limits
from weir.storage import users as user_rows
from weir.storage.users import ROLES, UserRow

app = typer.Typer(
    help="Create, inspect, change and delete users, who own virtual keys.\n\n"
         "Example: gatewayctl users create alice --role member",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
NameArgument = Annotated[str, typer.Argument(help="The user's unique name.")]
GroupOption = Annotated[Optional[list[str]], typer.Option(
    "--group", help="A group the user belongs to; repeat for several. Replaces the user's groups.")]
RequestsOption = Annotated[Optional[int], typer.Option(
    "--requests-per-minute", min=1, help="Maximum requests per minute for all of the user's keys together.")]
TokensOption = Annotated[Optional[int], typer.Option(
    "--tokens-per-minute", min=1, help="Maximum tokens per minute for all of the user's keys together.")]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"--role {role!r} is not a role. Use one of: {', '.join(ROLES)}.")
    return role


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArgument,
    role: Annotated[str, typer.Option(help="admin, auditor or member.")] = "member",
    group: GroupOption = None,
    requests_per_minute: RequestsOption = None,
    tokens_per_minute: TokensOption = None,
    json: JsonOption = False,
) -> None:
    """Create a user, optionally in some groups and with rate limits.

    Example: gatewayctl users create alice --role member --group engineering --requests-per-minute 600
    """
    with database(ctx) as connection:
        user_rows.create_user(connection, name, check_role(role))
        if group:
            group_rows.set_user_groups(connection, name, group)
        if requests_per_minute or tokens_per_minute:
            rate_limits.set_limits(connection, "user", name, requests_per_minute, tokens_per_minute)
        user = user_rows.get_user(connection, name)
    print_result(user_document(user), json, f"Created user {user.name} with role {user.role}{_in_groups(user)}.")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List users with their roles and groups.

    Example: gatewayctl users list --json
    """
    with database(ctx) as connection:
        users = user_rows.list_users(connection)
    if json:
        print_json([user_document(user) for user in users])
    else:
        print_table("Users", ["Name", "Role", "Groups", "Source", "Created"],
                    [(u.name, u.role, u.groups, u.source, u.created_at) for u in users])


@app.command("show")
def show(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Show one user: role, groups and limits.

    Example: gatewayctl users show alice
    """
    with database(ctx) as connection:
        user = user_rows.get_user(connection, name)
    if json:
        print_json(user_document(user))
    else:
        print_user(user)


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArgument,
    role: Annotated[Optional[str], typer.Option(help="New role: admin, auditor or member.")] = None,
    group: GroupOption = None,
    requests_per_minute: RequestsOption = None,
    tokens_per_minute: TokensOption = None,
    no_limits: Annotated[bool, typer.Option("--no-limits", help="Remove the user's own rate limits.")] = False,
    json: JsonOption = False,
) -> None:
    """Change a user's role, groups or rate limits; what is not given stays as it is.

    Example: gatewayctl users update alice --role auditor --group engineering --group research
    """
    limits_given = requests_per_minute is not None or tokens_per_minute is not None
    if role is None and group is None and not limits_given and not no_limits:
        raise InvalidInput("Nothing to change: give --role, --group, a limit or --no-limits.")
    if no_limits and limits_given:
        raise InvalidInput("Give either --no-limits or new limits, not both.")
    with database(ctx) as connection:
        user = user_rows.update_user(connection, name, role=None if role is None else check_role(role))
        if group is not None:
            group_rows.set_user_groups(connection, name, group)
        if no_limits:
            rate_limits.clear_limits(connection, "user", name)
        elif limits_given:
            # A limit not given keeps its current value, so one flag changes one limit.
            rate_limits.set_limits(connection, "user", name, requests_per_minute or user.requests_per_minute,
                                   tokens_per_minute or user.tokens_per_minute)
        user = user_rows.get_user(connection, name)
    print_result(user_document(user), json, f"Updated user {user.name}: role {user.role}{_in_groups(user)}.")


@app.command("delete")
def delete(ctx: typer.Context, name: NameArgument, json: JsonOption = False) -> None:
    """Delete a user. Their virtual keys are revoked and deleted with them.

    Example: gatewayctl users delete alice
    """
    with database(ctx) as connection:
        revoked = user_rows.delete_user(connection, name)
    print_result({"user": name, "revoked_keys": revoked}, json,
                 f"Deleted user {name} and revoked {revoked} virtual key(s) of theirs.")


def print_user(user: UserRow) -> None:
    print_table(f"User {user.name}", ["Field", "Value"], [
        ("Role", user.role), ("Groups", user.groups),
        ("Requests per minute", user.requests_per_minute or "no limit of its own"),
        ("Tokens per minute", user.tokens_per_minute or "no limit of its own"),
        ("Source", user.source), ("Created", user.created_at),
    ])


def _in_groups(user: UserRow) -> str:
    return f", in groups {', '.join(user.groups)}" if user.groups else ", in no group"
