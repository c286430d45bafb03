"""Image tombstones: what was deleted is known, so only that is deleted again.

An object under originals/<tenant>/<image id> without a record used to mean "this image was deleted", and
reconcile and the embed function deleted it. After a restore from a dump older than some uploads, those
originals (the only copy) have no record either. Now every deletion of an image record leaves a tombstone
in the same transaction; an id-named object without a record is deleted only when its tombstone says so,
and adopted as a new pending record otherwise.

No foreign key to `images` (the row is gone). One to `tenants`: a deleted tenant takes its tombstones
along, and the objects it leaves behind are skipped ("unknown tenant"), never deleted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE image_tombstones (
        image_id   uuid PRIMARY KEY,
        tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        deleted_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX image_tombstones_tenant ON image_tombstones (tenant_id);
    """)


def downgrade() -> None:
    # The code before this revision reads every id-named object without a record as deleted: nothing to keep.
    op.execute("DROP TABLE image_tombstones;")
