"""EXIF: when, with what and where a photo was taken, read from the original on ingestion.

`taken_at_local` is the wall-clock time of DateTimeOriginal as written; `taken_at` the same instant, only
when OffsetTimeOriginal gives its offset (never guessed from the upload time). `latitude`/`longitude` are
both set or both NULL (and never stored with IMAGESEARCH_STORE_LOCATION=false). `exif_read_at` says the
original's EXIF was read (whatever it held), so `imagesearch enrich --missing` knows what is left.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE images
        ADD COLUMN taken_at       timestamptz,
        ADD COLUMN taken_at_local timestamp,
        ADD COLUMN camera_make    text CHECK (length(camera_make) <= 128),
        ADD COLUMN camera_model   text CHECK (length(camera_model) <= 128),
        ADD COLUMN lens           text CHECK (length(lens) <= 128),
        ADD COLUMN latitude       double precision CHECK (latitude BETWEEN -90 AND 90),
        ADD COLUMN longitude      double precision CHECK (longitude BETWEEN -180 AND 180),
        ADD COLUMN exif_read_at   timestamptz,
        ADD CONSTRAINT images_location_pair CHECK ((latitude IS NULL) = (longitude IS NULL));
    -- taken_after / taken_before.
    CREATE INDEX images_taken ON images (tenant_id, taken_at_local) WHERE taken_at_local IS NOT NULL;
    -- near / bbox: a latitude band first, then longitude (no PostGIS).
    CREATE INDEX images_location ON images (tenant_id, latitude, longitude) WHERE latitude IS NOT NULL;
    -- enrich --missing: ready images whose EXIF was never read.
    CREATE INDEX images_exif_unread ON images (id) WHERE exif_read_at IS NULL AND status = 'ready';
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX images_exif_unread; DROP INDEX images_location; DROP INDEX images_taken;
    ALTER TABLE images
        DROP CONSTRAINT images_location_pair,
        DROP COLUMN exif_read_at, DROP COLUMN longitude, DROP COLUMN latitude, DROP COLUMN lens,
        DROP COLUMN camera_model, DROP COLUMN camera_make, DROP COLUMN taken_at_local, DROP COLUMN taken_at;
    """)
