"""Shadow comparisons: how a candidate search strategy agreed with the live one on sampled queries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE shadow_comparisons (
        id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        created_at         timestamptz NOT NULL DEFAULT now(),
        tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        live_strategy      text NOT NULL,
        candidate_strategy text NOT NULL,
        mode               text NOT NULL,
        k                  integer NOT NULL CHECK (k > 0),
        -- NULL when the candidate failed or ran out of time
        overlap            double precision CHECK (overlap BETWEEN 0 AND 1),
        rbo                double precision CHECK (rbo BETWEEN 0 AND 1),
        live_ms            double precision NOT NULL,
        candidate_ms       double precision,
        outcome            text NOT NULL CHECK (outcome IN ('ok', 'timeout', 'error')),
        error              text,
        -- a hash, not the query: comparisons are kept longer than anyone should keep users' queries
        query_hash         text NOT NULL
    );
    CREATE INDEX shadow_comparisons_strategy_time ON shadow_comparisons (candidate_strategy, created_at);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE shadow_comparisons;")
