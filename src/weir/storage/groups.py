"""The `groups`, `group_members` and `group_aliases` tables: who may use which alias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from weir.errors import NotFound
from weir.ids import GroupId
from weir.storage.aliases import get_alias_id
from weir.storage.constraints import translate_violations
from weir.storage.users import get_user


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: GroupId
    name: str
    source: str
    created_at: datetime
    members: list[str]
    aliases: list[str]


_SELECT = """
    SELECT g.id, g.name, g.source, g.created_at,
           coalesce((SELECT array_agg(u.name ORDER BY u.name) FROM group_members m
                     JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id), '{}') AS members,
           coalesce((SELECT array_agg(a.name ORDER BY a.name) FROM group_aliases ga
                     JOIN aliases a ON a.id = ga.alias_id WHERE ga.group_id = g.id), '{}') AS aliases
    FROM groups g
"""


def create_group(connection: psycopg.Connection[Any], name: str, source: str = "cli") -> GroupRow:
    with translate_violations({"groups_name_key": f"A group named {name!r} already exists."}):
        connection.execute("INSERT INTO groups (name, source) VALUES (%s, %s)", (name, source))
    return get_group(connection, name)


def get_group(connection: psycopg.Connection[Any], name: str) -> GroupRow:
    row = connection.execute(_SELECT + " WHERE g.name = %s", (name,)).fetchone()
    if row is None:
        raise NotFound(f"No group named {name!r}. List groups with `gatewayctl groups list`.")
    return GroupRow(**row)


def list_groups(connection: psycopg.Connection[Any]) -> list[GroupRow]:
    return [GroupRow(**row) for row in connection.execute(_SELECT + " ORDER BY g.name").fetchall()]


def delete_group(connection: psycopg.Connection[Any], name: str) -> None:
    group = get_group(connection, name)
    connection.execute("DELETE FROM groups WHERE id = %s", (group.id,))


def add_member(connection: psycopg.Connection[Any], group: str, user: str) -> None:
    group_id, user_id = get_group(connection, group).id, get_user(connection, user).id
    connection.execute(
        "INSERT INTO group_members (group_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (group_id, user_id),
    )


def remove_member(connection: psycopg.Connection[Any], group: str, user: str) -> None:
    group_id, user_id = get_group(connection, group).id, get_user(connection, user).id
    connection.execute("DELETE FROM group_members WHERE group_id = %s AND user_id = %s", (group_id, user_id))


def grant_alias(connection: psycopg.Connection[Any], group: str, alias: str) -> None:
    group_id, alias_id = get_group(connection, group).id, get_alias_id(connection, alias)
    connection.execute(
        "INSERT INTO group_aliases (group_id, alias_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (group_id, alias_id),
    )


def revoke_alias(connection: psycopg.Connection[Any], group: str, alias: str) -> None:
    group_id, alias_id = get_group(connection, group).id, get_alias_id(connection, alias)
    connection.execute("DELETE FROM group_aliases WHERE group_id = %s AND alias_id = %s", (group_id, alias_id))


def set_aliases(connection: psycopg.Connection[Any], group: str, aliases: list[str]) -> None:
    """Make `aliases` exactly the aliases granted to `group`."""
    group_id = get_group(connection, group).id
    alias_ids = [get_alias_id(connection, alias) for alias in aliases]
    _replace_links(connection, "group_aliases", ("group_id", group_id), ("alias_id", alias_ids))


def set_user_groups(connection: psycopg.Connection[Any], user: str, groups: list[str]) -> None:
    """Make `groups` exactly the groups `user` belongs to."""
    user_id = get_user(connection, user).id
    group_ids = [get_group(connection, group).id for group in groups]
    _replace_links(connection, "group_members", ("user_id", user_id), ("group_id", group_ids))


def _replace_links(connection: psycopg.Connection[Any], table: str, fixed: tuple[str, int],
                   linked: tuple[str, Sequence[int]]) -> None:
    """Make the rows of link `table` whose `fixed` column has its value point at exactly the `linked` IDs."""
    fixed_column, fixed_id = fixed
    linked_column, linked_ids = linked
    names = {"table": sql.Identifier(table), "fixed": sql.Identifier(fixed_column),
             "linked": sql.Identifier(linked_column)}
    connection.execute(
        sql.SQL("DELETE FROM {table} WHERE {fixed} = %s AND NOT {linked} = ANY(%s)").format(**names),
        (fixed_id, linked_ids),
    )
    for linked_id in linked_ids:
        connection.execute(
            sql.SQL("INSERT INTO {table} ({fixed}, {linked}) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(**names),
            (fixed_id, linked_id),
        )
