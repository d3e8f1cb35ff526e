"""Add deployments.idle_timeout_seconds: the longest pause allowed between stream chunks.

NULL keeps the earlier meaning, where timeout_seconds bounds both the wait for
the first response byte and every pause between chunks.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE deployments ADD COLUMN idle_timeout_seconds double precision "
        "CONSTRAINT deployments_idle_timeout_check CHECK (idle_timeout_seconds > 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE deployments DROP COLUMN idle_timeout_seconds")
