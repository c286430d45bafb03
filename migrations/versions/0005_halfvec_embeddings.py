"""Embeddings as halfvec: two bytes a dimension instead of four.

Half the embeddings table and half each model's HNSW index (bench/halfvec.py: table + index 0.46x on 512-d
vectors), with recall against exact float32 search within the index's own build-to-build variance; the
rounding alone (exact search over float16 values) keeps recall@10 above 0.99. Each model's partial index
is rebuilt on `embedding::halfvec(dim)` with halfvec_cosine_ops, as imagesearch.db.embeddings builds new
ones. The conversion rewrites the table and holds an exclusive lock while it runs (minutes per million
vectors): searches and ingestion wait for it, so run it when traffic is low (the deploy's migration runs it
before the new code; the old code cannot search a halfvec column, docs/deploy.md "Migrations").

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HNSW = "WITH (m = 16, ef_construction = 64)"


def index_name(model_id: str) -> str:
    """imagesearch.db.embeddings.index_name, as of this revision (a migration keeps its own copy)."""
    return "embeddings_hnsw_" + hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:16]


def _rebuild(kind: str) -> None:
    """Convert the column to `kind` (vector or halfvec) and rebuild every model's index on it."""
    conn = op.get_bind()
    models = conn.exec_driver_sql("SELECT id, dim FROM models ORDER BY id").fetchall()
    # exec_driver_sql: no bind-parameter parsing of the text (a model id may hold a colon).
    for model_id, _ in models:
        conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index_name(model_id)}"')
    conn.exec_driver_sql(f"ALTER TABLE embeddings ALTER COLUMN embedding TYPE {kind} USING embedding::{kind}")
    for model_id, dim in models:
        literal = model_id.replace("'", "''")
        conn.exec_driver_sql(
            f'CREATE INDEX IF NOT EXISTS "{index_name(model_id)}" ON embeddings '
            f"USING hnsw ((embedding::{kind}({int(dim)})) {kind}_cosine_ops) {HNSW} "
            f"WHERE model_id = '{literal}'"
        )


def upgrade() -> None:
    _rebuild("halfvec")


def downgrade() -> None:
    _rebuild("vector")
