"""Initial schema: tenants, API keys, images (full-text + trigram), models and embeddings.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE EXTENSION IF NOT EXISTS pg_trgm;

    CREATE TABLE tenants (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    -- The tenant of a stack running with auth off (see README, "Authentication").
    INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'default');

    CREATE TABLE api_keys (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        prefix       text NOT NULL UNIQUE,
        key_hash     bytea NOT NULL,
        name         text,
        created_at   timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at   timestamptz
    );
    CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

    -- Generated columns need immutable expressions; array_to_string is only stable (it is polymorphic).
    CREATE FUNCTION imagesearch_tags_text(tags text[]) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN coalesce(array_to_string(tags, ' '), '');
    -- "beach_dog-2.jpg" -> "beach dog 2 jpg", so a filename word is a keyword like any other.
    CREATE FUNCTION imagesearch_filename_text(filename text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN regexp_replace(coalesce(filename, ''), '[-_.]+', ' ', 'g');

    CREATE TABLE images (
        id           uuid PRIMARY KEY,
        tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        storage_key  text NOT NULL UNIQUE,
        sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        content_type text,
        size         bigint CHECK (size >= 0),
        width        integer CHECK (width > 0),
        height       integer CHECK (height > 0),
        filename     text,
        title        text,
        description  text,
        tags         text[] NOT NULL DEFAULT '{}',
        status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
        error        text,
        attempts     integer NOT NULL DEFAULT 0,
        -- The object version last processed (ETag) and its S3 event sequencer: an older event arriving
        -- after a newer one must not overwrite the newer result.
        object_etag  text,
        sequencer    text,
        created_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now(),
        search_tsv   tsvector GENERATED ALWAYS AS (
               setweight(to_tsvector('english', coalesce(title, '')), 'A')
            || setweight(to_tsvector('english', imagesearch_tags_text(tags)), 'A')
            || setweight(to_tsvector('english', coalesce(description, '')), 'B')
            || setweight(to_tsvector('english', imagesearch_filename_text(filename)), 'C')
        ) STORED
    );
    -- Same bytes, same tenant: one image. NULL (a direct upload whose bytes have not arrived) never clashes.
    CREATE UNIQUE INDEX images_tenant_sha256 ON images (tenant_id, sha256);
    -- Listing newest first with a (created_at, id) cursor.
    CREATE INDEX images_tenant_created ON images (tenant_id, created_at DESC, id DESC);
    -- fastupdate off: with the pending list on, every search scans the not-yet-merged entries until the
    -- next vacuum (4 ms instead of 0.2 ms at 10,000 images in bench/search.py); inserts pay a little more.
    CREATE INDEX images_search_tsv ON images USING gin (search_tsv) WITH (fastupdate = off);
    CREATE INDEX images_filename_trgm ON images USING gin (filename gin_trgm_ops) WITH (fastupdate = off);
    CREATE INDEX images_tags ON images USING gin (tags) WITH (fastupdate = off);
    -- Reconciliation looks for records stuck in pending.
    CREATE INDEX images_pending ON images (updated_at) WHERE status = 'pending';

    -- Search answers with the one `active` model; the embed function also embeds new images with every
    -- `backfill` model, so a model being back-filled never falls behind. `retired` models keep their vectors
    -- until `imagesearch model drop`.
    CREATE TABLE models (
        id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
        dim          integer NOT NULL CHECK (dim BETWEEN 1 AND 16000),
        state        text NOT NULL DEFAULT 'backfill' CHECK (state IN ('backfill', 'active', 'retired')),
        bundle_uri   text,
        manifest     jsonb NOT NULL DEFAULT '{}',
        created_at   timestamptz NOT NULL DEFAULT now(),
        activated_at timestamptz
    );
    CREATE UNIQUE INDEX models_one_active ON models (state) WHERE state = 'active';

    -- One vector per (image, model): a new model is back-filled beside the old one, then switched on.
    -- The column has no fixed dimension; each model gets a partial HNSW index over a cast to its dimension
    -- (created by imagesearch.db.embeddings.create_index when a model is registered: it depends on data,
    -- not on the schema).
    CREATE TABLE embeddings (
        image_id   uuid NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        model_id   text NOT NULL REFERENCES models (id) ON DELETE CASCADE,
        tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        embedding  vector NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (image_id, model_id)
    );
    CREATE INDEX embeddings_model_tenant ON embeddings (model_id, tenant_id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE embeddings;
    DROP TABLE models;
    DROP TABLE images;
    DROP FUNCTION imagesearch_filename_text(text);
    DROP FUNCTION imagesearch_tags_text(text[]);
    DROP TABLE api_keys;
    DROP TABLE tenants;
    """)
