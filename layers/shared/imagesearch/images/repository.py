"""SQL for image records. Every function takes a connection (the caller owns the transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from imagesearch import cursors
from imagesearch.db import embeddings
from imagesearch.exif import ExifData
from imagesearch.images.schemas import EnrichedFields, ImageFields, PhotoFields


class ImageRecord(ImageFields, PhotoFields, EnrichedFields):
    """A row of `images`: the fields the API shows, and the ones only the service and ingestion see."""

    tenant_id: UUID
    storage_key: str
    attempts: int
    object_etag: str | None
    sequencer: str | None


COLUMNS = ", ".join(ImageRecord.model_fields)


@dataclass(frozen=True)
class NewImage:
    """What a new record is made of; the rest starts at its default (pending, no attempts yet)."""

    id: UUID
    tenant_id: UUID
    storage_key: str
    filename: str | None
    title: str | None
    description: str | None
    tags: list[str]
    content_type: str | None
    size: int | None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None


_NEW_COLUMNS = [f.name for f in fields(NewImage)]


def _one(conn: psycopg.Connection, query: str, params: Any) -> ImageRecord | None:
    with conn.cursor(row_factory=class_row(ImageRecord)) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def insert(conn: psycopg.Connection, new: NewImage) -> ImageRecord | None:
    """A new pending record; None when the tenant already has an image with these bytes."""
    return _one(
        conn,
        f"INSERT INTO images ({', '.join(_NEW_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_NEW_COLUMNS))}) "
        f"ON CONFLICT (tenant_id, sha256) DO NOTHING RETURNING {COLUMNS}",
        [getattr(new, name) for name in _NEW_COLUMNS],
    )


def get(conn: psycopg.Connection, tenant_id: UUID, image_id: UUID) -> ImageRecord | None:
    return _one(conn, f"SELECT {COLUMNS} FROM images WHERE tenant_id = %s AND id = %s", (tenant_id, image_id))


def get_by_sha256(conn: psycopg.Connection, tenant_id: UUID, sha256: str) -> ImageRecord | None:
    return _one(
        conn, f"SELECT {COLUMNS} FROM images WHERE tenant_id = %s AND sha256 = %s", (tenant_id, sha256)
    )


def get_by_key(conn: psycopg.Connection, storage_key: str, *, for_update: bool = False) -> ImageRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    return _one(conn, f"SELECT {COLUMNS} FROM images WHERE storage_key = %s{lock}", (storage_key,))


# --- listing with a keyset cursor -----------------------------------------------------------------------


def encode_cursor(created_at: datetime, image_id: UUID) -> str:
    return cursors.encode_cursor([created_at.isoformat(), str(image_id)])


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Inverse of encode_cursor; InvalidRequest for anything else."""

    def parse(values: Any) -> tuple[datetime, UUID]:
        created_at, image_id = values
        return datetime.fromisoformat(created_at), UUID(image_id)

    return cursors.decode_cursor(cursor, parse)


def list_page(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    status: str | None,
    tag: str | None,
    limit: int,
    after: tuple[datetime, UUID] | None,
    sha256: str | None = None,
) -> list[ImageRecord]:
    """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
    with conn.cursor(row_factory=class_row(ImageRecord)) as cur:
        cur.execute(
            f"""
            SELECT {COLUMNS} FROM images
            WHERE tenant_id = %(tenant)s
              AND (%(status)s::text IS NULL OR status = %(status)s)
              AND (%(tag)s::text IS NULL OR tags @> ARRAY[%(tag)s::text])
              AND (%(sha256)s::text IS NULL OR sha256 = %(sha256)s)
              AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT %(limit)s
            """,
            {
                "tenant": tenant_id,
                "status": status,
                "tag": tag,
                "sha256": sha256,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
        return cur.fetchall()


# --- changes ----------------------------------------------------------------------------------------------


def update_metadata(
    conn: psycopg.Connection, tenant_id: UUID, image_id: UUID, changes: dict[str, Any]
) -> ImageRecord | None:
    """Set some of title, description, tags (the generated keyword vector follows in the same statement)."""
    allowed = {"title", "description", "tags"}
    if not changes:
        return get(conn, tenant_id, image_id)
    if not set(changes) <= allowed:
        raise ValueError(f"not updatable: {sorted(set(changes) - allowed)}")
    assignments = ", ".join(f"{name} = %({name})s" for name in sorted(changes))  # names from `allowed` only
    return _one(
        conn,
        f"UPDATE images SET {assignments}, updated_at = now() WHERE tenant_id = %(tenant)s AND id = %(id)s "
        f"RETURNING {COLUMNS}",
        {**changes, "tenant": tenant_id, "id": image_id},
    )


def delete(conn: psycopg.Connection, tenant_id: UUID, image_id: UUID) -> ImageRecord | None:
    """Remove the record (its embeddings cascade) and leave its tombstone; the deleted record, or None."""
    # One statement, so no deletion of a record can ever go without its tombstone: an id-named object
    # without a record is deleted only when a tombstone says its image was (see `tombstoned`).
    return _one(
        conn,
        f"""
        WITH gone AS (DELETE FROM images WHERE tenant_id = %(tenant)s AND id = %(id)s RETURNING *),
             tombstone AS (
                 INSERT INTO image_tombstones (image_id, tenant_id) SELECT id, tenant_id FROM gone
                 ON CONFLICT (image_id) DO NOTHING
             )
        SELECT {COLUMNS} FROM gone
        """,
        {"tenant": tenant_id, "id": image_id},
    )


def tombstoned(conn: psycopg.Connection, tenant_id: UUID, image_id: UUID) -> bool:
    """Whether this tenant's image of this id was deleted (its record is gone for good)."""
    row = conn.execute(
        "SELECT 1 FROM image_tombstones WHERE tenant_id = %s AND image_id = %s", (tenant_id, image_id)
    ).fetchone()
    return row is not None


def adopt(conn: psycopg.Connection, new: NewImage) -> ImageRecord | None:
    """A pending record for an id-named original that has none and no tombstone (lost in a restore, or
    never made); None when its id is taken or it was deleted meanwhile."""
    names = ", ".join(_NEW_COLUMNS)
    return _one(
        conn,
        f"INSERT INTO images ({names}) SELECT {', '.join(['%s'] * len(_NEW_COLUMNS))} "
        "WHERE NOT EXISTS (SELECT 1 FROM image_tombstones WHERE image_id = %s) "
        f"ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
        [*(getattr(new, name) for name in _NEW_COLUMNS), new.id],
    )


def count_attempt(conn: psycopg.Connection, image_id: UUID) -> int:
    row = conn.execute(
        "UPDATE images SET attempts = attempts + 1 WHERE id = %s RETURNING attempts", (image_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def mark_failed(
    conn: psycopg.Connection, image_id: UUID, error: str, *, object_etag: str | None, sequencer: str | None
) -> None:
    conn.execute(
        """
        UPDATE images SET status = 'failed', error = %s, object_etag = %s, sequencer = %s, updated_at = now()
        WHERE id = %s
        """,
        (error, object_etag, sequencer, image_id),
    )
    # A replaced object that is now bad must not be found by the vectors of its predecessor.
    embeddings.delete_for_image(conn, image_id)


def mark_ready(
    conn: psycopg.Connection,
    image_id: UUID,
    *,
    content_type: str,
    size: int,
    width: int,
    height: int,
    sha256: str,
    object_etag: str | None,
    sequencer: str | None,
    exif: ExifData,
) -> None:
    conn.execute(
        """
        UPDATE images SET status = 'ready', error = NULL, content_type = %s, size = %s, width = %s,
               height = %s, sha256 = %s, object_etag = %s, sequencer = %s, updated_at = now()
        WHERE id = %s
        """,
        (content_type, size, width, height, sha256, object_etag, sequencer, image_id),
    )
    set_exif(conn, image_id, exif)


def set_exif(conn: psycopg.Connection, image_id: UUID, exif: ExifData, *, only_unread: bool = False) -> bool:
    """Store what the original's EXIF said (absent fields cleared) and that it was read; whether it was
    stored (`only_unread`: not when it was read meanwhile)."""
    unread = " AND exif_read_at IS NULL" if only_unread else ""
    cur = conn.execute(
        f"""
        UPDATE images SET taken_at = %s, taken_at_local = %s, camera_make = %s, camera_model = %s,
               lens = %s, latitude = %s, longitude = %s, exif_read_at = now()
        WHERE id = %s{unread}
        """,
        (
            exif.taken_at,
            exif.taken_at_local,
            exif.camera_make,
            exif.camera_model,
            exif.lens,
            exif.latitude,
            exif.longitude,
            image_id,
        ),
    )
    return cur.rowcount == 1


def record_enrich_failures(conn: psycopg.Connection, image_id: UUID, failures: dict[str, str]) -> None:
    """Note the enrichment steps that failed on an image (step -> why); the image stays as it is."""
    if failures:
        conn.execute(
            "UPDATE images SET enrich_failures = enrich_failures || %s::jsonb WHERE id = %s",
            (json.dumps(failures), image_id),
        )


def clear_enrich_failure(conn: psycopg.Connection, image_id: UUID, step: str) -> None:
    conn.execute(
        "UPDATE images SET enrich_failures = enrich_failures - %s WHERE id = %s AND enrich_failures ? %s",
        (step, image_id, step),
    )


# --- maintenance (reconcile, the local stack) -------------------------------------------------------------


def exists(conn: psycopg.Connection, *, storage_key: str | None = None, image_id: UUID | None = None) -> bool:
    """Whether a record (of any tenant) has this storage key, or this id."""
    if storage_key is not None:
        row = conn.execute("SELECT 1 FROM images WHERE storage_key = %s", (storage_key,)).fetchone()
    else:
        row = conn.execute("SELECT 1 FROM images WHERE id = %s", (image_id,)).fetchone()
    return row is not None


def pending(conn: psycopg.Connection, *, unchanged_for_seconds: float = 0.0) -> list[tuple[UUID, str]]:
    """(id, storage key) of every pending record not changed for that long, oldest change first."""
    rows = conn.execute(
        "SELECT id, storage_key FROM images WHERE status = 'pending' "
        "AND updated_at <= now() - make_interval(secs => %s) ORDER BY updated_at",
        (unchanged_for_seconds,),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def fail_pending(conn: psycopg.Connection, image_id: UUID, error: str) -> UUID | None:
    """Mark the record failed unless it left pending meanwhile; its tenant's id when it was marked."""
    row = conn.execute(
        "UPDATE images SET status = 'failed', error = %s, updated_at = now() "
        "WHERE id = %s AND status = 'pending' RETURNING tenant_id",
        (error, image_id),
    ).fetchone()
    return row[0] if row else None
