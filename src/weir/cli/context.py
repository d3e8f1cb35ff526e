"""State that every command shares: the config file, the database, the `--debug` switch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import typer

from weir.config.loader import load_config
from weir.config.runtime import require_current_schema, resolve_database
from weir.config.spec import GatewaySpec
from weir.storage.database import connect


@dataclass
class CliState:
    config_path: Path | None = None
    debug: bool = False
    _spec: GatewaySpec | None = None
    _url: str | None = None

    @property
    def spec(self) -> GatewaySpec:
        if self._spec is None:
            self._spec = load_config(self.config_path)
        return self._spec

    def database_url(self) -> str:
        if self._url is None:
            self._url = resolve_database(self.spec)
        return self._url


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


@contextmanager
def database(ctx: typer.Context) -> Iterator[psycopg.Connection[Any]]:
    """Connect to the configured database, checked to be at the current schema."""
    url = state(ctx).database_url()
    require_current_schema(url)
    with connect(url) as connection:
        yield connection
