"""Alembic environment for Weir.

Weir calls alembic from `gatewayctl migrate` (see `weir.storage.migrations`),
which puts the libpq connection URL in the alembic config's attributes. The
migrations are plain SQL, so no SQLAlchemy metadata is involved. A session
advisory lock keeps two processes that start at once from migrating together.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, text

MIGRATION_LOCK_ID = 0x57454952  # "WEIR" in ASCII: one fixed advisory lock number for migrations


def run_migrations_online() -> None:
    url = context.config.attributes["database_url"]
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))

    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        try:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


run_migrations_online()
