"""unaccent: the `place` filter matches names without their accents ("Sao Paulo" finds São Paulo).

unaccent is one of PostgreSQL's trusted contrib extensions (RDS and Aurora offer it), so the database owner
the migrations run as may create it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")


def downgrade() -> None:
    op.execute("DROP EXTENSION IF EXISTS unaccent")
