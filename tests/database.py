"""Test databases: one migrated template per session, one fresh copy per test.

The server is `WEIR_TEST_DATABASE_URL` when set, else an embedded Postgres in
a temporary directory. Copying a template is much faster than migrating a new
database for every test, and gives each test a clean schema all the same.
"""

from __future__ import annotations

import itertools
import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from weir.storage import migrations

_numbers = itertools.count()


def with_database(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname", "postgres"))


class DatabaseFactory:
    """Creates migrated databases on one server, copied from a template."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.template = f"weir_template_{os.getpid()}"
        self._execute(f"DROP DATABASE IF EXISTS {self.template}")
        self._execute(f"CREATE DATABASE {self.template}")
        migrations.upgrade(with_database(server_url, self.template))

    def create(self) -> str:
        name = f"weir_test_{os.getpid()}_{next(_numbers)}"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return with_database(self.server_url, name)

    def drop(self, url: str) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {database_name(url)} WITH (FORCE)")

    def close(self) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")

    def _execute(self, statement: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type]
