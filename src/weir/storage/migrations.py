"""Schema migrations: alembic, driven from code rather than from alembic.ini."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from weir.errors import DatabaseError
from weir.storage.database import unreachable_message


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision."""
    try:
        command.upgrade(_alembic_config(url), "head")
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError):
        # SQLAlchemy wraps the failed connect of alembic's engine in its own class.
        raise DatabaseError(unreachable_message(url)) from None


def current_revision(url: str) -> str | None:
    """Return the revision the database is at, or None before the first migration."""
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except Exception as error:
        if isinstance(error.__cause__, psycopg.OperationalError) or isinstance(error, psycopg.OperationalError):
            raise DatabaseError(unreachable_message(url)) from None
        raise
    finally:
        engine.dispose()


def head_revision() -> str:
    """Return the newest revision that this version of Weir ships."""
    head = ScriptDirectory.from_config(_alembic_config("")).get_current_head()
    assert head is not None
    return head


def migrations_directory() -> Path:
    """Locate the migrations: packaged inside `weir` in a wheel, at the repository top in a checkout."""
    packaged = Path(str(resources.files("weir"))) / "migrations"
    if (packaged / "env.py").exists():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.attributes["database_url"] = url
    return config
