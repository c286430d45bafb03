"""Enrichment beyond EXIF: the place a photo was taken, its near-duplicate group, labels from the model and
the text written in it; all of them words for the keyword branch.

- `place_*`: reverse-geocoded offline from the stored location (imagesearch.enrichment.places);
  `place_at` says it was looked up (whatever it found: a photo at sea has no place).
- `phash`: the 64-bit perceptual hash of the image; `duplicate_group`: the id of the first image of its
  near-duplicate group within the tenant (NULL: none found), so a group is one equality.
- `auto_tags`: vocabulary labels the model scores above its threshold, separate from the user's `tags`;
  `auto_tags_model` names the model and vocabulary they came from (a new one re-labels).
- `ocr_text`: printed text recognised in the image; `ocr_at` says it was read (whatever it found).
- `enrich_failures`: {step: why} for the steps that failed on the image (a model error, a timeout); the image
  stays ready and searchable by its embedding, and the back-fill tries the step again.

The keyword tsvector gains them at their own weights: title and tags A, description and place B, filename
and auto tags C, text in the image D (ts_rank_cd weighs D least).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TSV_0001 = """
       setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('english', imagesearch_tags_text(tags)), 'A')
    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
    || setweight(to_tsvector('english', imagesearch_filename_text(filename)), 'C')
"""

_TSV_0008 = (
    _TSV_0001
    + """
    || setweight(to_tsvector('english', coalesce(place_city, '') || ' ' || coalesce(place_region, '')
                                        || ' ' || coalesce(place_country, '')), 'B')
    || setweight(to_tsvector('english', imagesearch_tags_text(auto_tags)), 'C')
    || setweight(to_tsvector('english', coalesce(ocr_text, '')), 'D')
"""
)


def upgrade() -> None:
    op.execute("""
    ALTER TABLE images
        ADD COLUMN place_city         text CHECK (length(place_city) <= 200),
        ADD COLUMN place_region       text CHECK (length(place_region) <= 200),
        ADD COLUMN place_country      text CHECK (length(place_country) <= 100),
        ADD COLUMN place_country_code text CHECK (place_country_code ~ '^[A-Z]{2}$'),
        ADD COLUMN place_at           timestamptz,
        ADD COLUMN phash              bigint,
        ADD COLUMN duplicate_group    uuid,
        ADD COLUMN auto_tags          text[] NOT NULL DEFAULT '{}',
        ADD COLUMN auto_tags_model    text CHECK (length(auto_tags_model) <= 300),
        ADD COLUMN ocr_text           text CHECK (length(ocr_text) <= 20000),
        ADD COLUMN ocr_at             timestamptz,
        ADD COLUMN enrich_failures    jsonb NOT NULL DEFAULT '{}';
    -- The auto_tags filter.
    CREATE INDEX images_auto_tags ON images USING gin (auto_tags) WITH (fastupdate = off);
    -- GET /duplicates and collapse: a group's members.
    CREATE INDEX images_duplicate_group ON images (tenant_id, duplicate_group)
        WHERE duplicate_group IS NOT NULL;
    -- enrich --missing: what is left of each step.
    CREATE INDEX images_place_unread ON images (id)
        WHERE place_at IS NULL AND latitude IS NOT NULL AND status = 'ready';
    CREATE INDEX images_phash_unread ON images (id) WHERE phash IS NULL AND status = 'ready';
    CREATE INDEX images_ocr_unread ON images (id) WHERE ocr_at IS NULL AND status = 'ready';
    """)
    op.execute(f"ALTER TABLE images ALTER COLUMN search_tsv SET EXPRESSION AS ({_TSV_0008})")


def downgrade() -> None:
    op.execute(f"ALTER TABLE images ALTER COLUMN search_tsv SET EXPRESSION AS ({_TSV_0001})")
    op.execute("""
    DROP INDEX images_ocr_unread; DROP INDEX images_phash_unread; DROP INDEX images_place_unread;
    DROP INDEX images_duplicate_group; DROP INDEX images_auto_tags;
    ALTER TABLE images
        DROP COLUMN enrich_failures, DROP COLUMN ocr_at, DROP COLUMN ocr_text,
        DROP COLUMN auto_tags_model, DROP COLUMN auto_tags,
        DROP COLUMN duplicate_group, DROP COLUMN phash, DROP COLUMN place_at, DROP COLUMN place_country_code,
        DROP COLUMN place_country, DROP COLUMN place_region, DROP COLUMN place_city;
    """)
