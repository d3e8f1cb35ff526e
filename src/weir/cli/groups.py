"""`gatewayctl groups`: sets of users, and the model aliases granted to them."""

from __future__ import annotations

from typing import Annotated

import typer

from weir.cli.context import database
from weir.cli.documents import group_document
from weir.cli.output import print_json, print_result, print_table
from weir.storage import groups as group_rows

app = typer.Typer(
    help="Create groups, manage their members, and grant them model aliases.\n\n"
         "Example: gatewayctl groups grant engineering chat-default",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
GroupArgument = Annotated[str, typer.Argument(help="The group's unique name.")]
UserArgument = Annotated[str, typer.Argument(help="A user's name, as `gatewayctl users list` shows.")]
AliasArgument = Annotated[str, typer.Argument(help="A model alias, as `gatewayctl models list` shows.")]


@app.command("create")
def create(ctx: typer.Context, name: GroupArgument, json: JsonOption = False) -> None:
    """Create an empty group.

    Example: gatewayctl groups create engineering
    """
    with database(ctx) as connection:
        group = group_rows.create_group(connection, name)
    print_result(group_document(group), json, f"Created group {group.name}.")


@app.command("list")
def list_(ctx: typer.Context, json: JsonOption = False) -> None:
    """List groups with their members and granted aliases.

    Example: gatewayctl groups list --json
    """
    with database(ctx) as connection:
        groups = group_rows.list_groups(connection)
    if json:
        print_json([group_document(group) for group in groups])
    else:
        print_table("Groups", ["Name", "Members", "Aliases", "Source", "Created"],
                    [(g.name, g.members, g.aliases, g.source, g.created_at) for g in groups])


@app.command("show")
def show(ctx: typer.Context, name: GroupArgument, json: JsonOption = False) -> None:
    """Show one group: its members and granted aliases.

    Example: gatewayctl groups show engineering
    """
    with database(ctx) as connection:
        group = group_rows.get_group(connection, name)
    if json:
        print_json(group_document(group))
    else:
        print_table(f"Group {group.name}", ["Field", "Value"], [
            ("Members", group.members), ("Aliases", group.aliases), ("Source", group.source),
            ("Created", group.created_at),
        ])


@app.command("add-member")
def add_member(ctx: typer.Context, group: GroupArgument, user: UserArgument, json: JsonOption = False) -> None:
    """Add a user to a group; they may then use the group's aliases.

    Example: gatewayctl groups add-member engineering alice
    """
    with database(ctx) as connection:
        group_rows.add_member(connection, group, user)
        row = group_rows.get_group(connection, group)
    print_result(group_document(row), json, f"Added user {user} to group {group}.")


@app.command("remove-member")
def remove_member(ctx: typer.Context, group: GroupArgument, user: UserArgument, json: JsonOption = False) -> None:
    """Remove a user from a group.

    Example: gatewayctl groups remove-member engineering alice
    """
    with database(ctx) as connection:
        group_rows.remove_member(connection, group, user)
        row = group_rows.get_group(connection, group)
    print_result(group_document(row), json, f"Removed user {user} from group {group}.")


@app.command("grant")
def grant(ctx: typer.Context, group: GroupArgument, alias: AliasArgument, json: JsonOption = False) -> None:
    """Grant a model alias to a group's members.

    Example: gatewayctl groups grant engineering chat-default
    """
    with database(ctx) as connection:
        group_rows.grant_alias(connection, group, alias)
        row = group_rows.get_group(connection, group)
    print_result(group_document(row), json, f"Granted model alias {alias} to group {group}.")


@app.command("revoke")
def revoke(ctx: typer.Context, group: GroupArgument, alias: AliasArgument, json: JsonOption = False) -> None:
    """Take a model alias away from a group's members.

    Example: gatewayctl groups revoke engineering chat-default
    """
    with database(ctx) as connection:
        group_rows.revoke_alias(connection, group, alias)
        row = group_rows.get_group(connection, group)
    print_result(group_document(row), json, f"Revoked model alias {alias} from group {group}.")


@app.command("delete")
def delete(ctx: typer.Context, name: GroupArgument, json: JsonOption = False) -> None:
    """Delete a group. Its members lose the aliases it granted; users and aliases stay.

    Example: gatewayctl groups delete engineering
    """
    with database(ctx) as connection:
        group = group_rows.get_group(connection, name)
        group_rows.delete_group(connection, name)
    print_result(group_document(group), json, f"Deleted group {name} ({len(group.members)} member(s), "
                                               f"{len(group.aliases)} granted alias(es)).")
