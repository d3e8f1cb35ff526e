"""`gatewayctl users`: people and services that own virtual keys."""

from __future__ import annotations

from typing import Annotated

import typer

from weir.cli.context import database
from weir.cli.output import console, isoformat, print_json, print_table
from weir.errors import InvalidInput
from weir.storage import users as user_rows
from weir.storage.users import ROLES, UserRow

app = typer.Typer(help="Create and list users, who own virtual keys.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def user_document(user: UserRow) -> dict[str, object]:
    return {"id": user.id, "name": user.name, "role": user.role, "groups": user.groups,
            "source": user.source, "created_at": isoformat(user.created_at)}


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"--role {role!r} is not a role. Use one of: {', '.join(ROLES)}.")
    return role


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user's unique name.")],
    role: Annotated[str, typer.Option(help="admin, auditor or member.")] = "member",
    json: JsonOption = False,
) -> None:
    """Create a user.

    Example: gatewayctl users create alice --role member
    """
    with database(ctx) as connection:
        user = user_rows.create_user(connection, name, check_role(role))
    if json:
        print_json(user_document(user))
    else:
        console.print(f"Created user {user.name} with role {user.role}.")


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
