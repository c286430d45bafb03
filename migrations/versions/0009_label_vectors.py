"""Label vectors: the text tower's vectors of a label vocabulary, kept per (model, vocabulary).

Zero-shot labelling scores every image against each label of a vocabulary (imagesearch.model.labels);
computing the labels' vectors runs the text tower over every prompt (hundreds), so they are computed once
per model and vocabulary, by whichever process needs them first, and read by the others. `vectors` holds
float32 rows, one per label in `labels`' order (row-major, little-endian).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE label_vectors (
        model_id          text NOT NULL,
        vocabulary_sha256 text NOT NULL CHECK (vocabulary_sha256 ~ '^[0-9a-f]{64}$'),
        labels            text[] NOT NULL,
        dim               integer NOT NULL CHECK (dim > 0),
        vectors           bytea NOT NULL CHECK (length(vectors) = 4 * dim * cardinality(labels)),
        created_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model_id, vocabulary_sha256)
    )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE label_vectors")
