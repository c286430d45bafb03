"""SQL for image records. Every function takes a connection (the caller owns the transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from imagesearch import cursors
from imagesearch.db import embeddings
from imagesearch.enrichment.places import PlaceName
from imagesearch.errors import InvalidRequest
from imagesearch.exif import ExifData
from imagesearch.images.filters import ImageFilter, where
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


# Each sort: its key column, its direction, and whether the key may be NULL (no date taken): those rows come
# last either way. The id breaks ties in the key's direction; the cursor is the (key, id) of the previous
# page's last row. created_at is NOT NULL, and its statement says nothing of NULLs, so that it matches the
# index images_tenant_created (an index DESC sorts NULLs first, and the planner does not know they are none).
SORTS: dict[str, tuple[str, str, bool]] = {
    "newest": ("created_at", "DESC", False),
    "oldest": ("created_at", "ASC", False),
    "taken_newest": ("taken_at_local", "DESC", True),
    "taken_oldest": ("taken_at_local", "ASC", True),
}


def encode_cursor(sort: str, key: datetime | None, image_id: UUID) -> str:
    return cursors.encode_cursor([sort, key.isoformat() if key else "", str(image_id)])


def decode_cursor(cursor: str, sort: str) -> tuple[datetime | None, UUID]:
    """Inverse of encode_cursor; InvalidRequest for anything else, or a cursor of another sort."""

    def parse(values: Any) -> tuple[str, datetime | None, UUID]:
        if len(values) == 2:  # before sorts: (created_at, id), newest first
            values = ["newest", *values]
        cursor_sort, key, image_id = values
        return cursor_sort, datetime.fromisoformat(key) if key else None, UUID(image_id)

    cursor_sort, key, image_id = cursors.decode_cursor(cursor, parse)
    if cursor_sort != sort:
        raise InvalidRequest(f"this cursor belongs to sort={cursor_sort}")
    return key, image_id


def sort_key(record: ImageRecord, sort: str) -> datetime | None:
    """The record's value of the sort's key (for the next page's cursor)."""
    value: datetime | None = getattr(record, SORTS[sort][0])
    return value


def _keyset(column: str, direction: str, *, nullable: bool, after_null: bool) -> sql.Composable:
    """Rows after the cursor's (key, id) in `ORDER BY key direction NULLS LAST, id direction`."""
    key, compare = sql.Identifier("i", column), sql.SQL("<" if direction == "DESC" else ">")
    if after_null:  # past every dated row: the undated ones, by id
        return sql.SQL(" AND {key} IS NULL AND i.id {compare} %(after_id)s").format(key=key, compare=compare)
    # A row comparison with a NULL key is NULL: the undated rows, which follow every dated one, by name.
    undated = sql.SQL(" OR {key} IS NULL").format(key=key) if nullable else sql.SQL("")
    return sql.SQL(" AND (({key}, i.id) {compare} (%(after_key)s, %(after_id)s){undated})").format(
        key=key, compare=compare, undated=undated
    )


def list_page(
    conn: psycopg.Connection,
    tenant_id: UUID,
    *,
    status: str | None,
    tag: str | None,
    limit: int,
    after: tuple[datetime | None, UUID] | None,
    sha256: str | None = None,
    filters: ImageFilter | None = None,
    sort: str = "newest",
) -> list[ImageRecord]:
    """One page in `sort` order (SORTS), narrowed by `filters` (images/filters.py); `after` is the
    (sort key, id) of the last item of the previous page."""
    column, direction, nullable = SORTS[sort]
    keyset = (
        _keyset(column, direction, nullable=nullable, after_null=after[0] is None) if after else sql.SQL("")
    )
    statement = sql.SQL(
        """
        SELECT {columns} FROM images i
        WHERE i.tenant_id = %(tenant)s
          AND (%(status)s::text IS NULL OR i.status = %(status)s)
          AND (%(tag)s::text IS NULL OR i.tags @> ARRAY[%(tag)s::text])
          AND (%(sha256)s::text IS NULL OR i.sha256 = %(sha256)s){filters}{keyset}
        ORDER BY {key} {direction}{nulls}, i.id {direction}
        LIMIT %(limit)s
        """
    ).format(
        columns=sql.SQL(COLUMNS),
        filters=where(filters) if filters else sql.SQL(""),
        keyset=keyset,
        key=sql.Identifier("i", column),
        direction=sql.SQL(direction),
        nulls=sql.SQL(" NULLS LAST" if nullable else ""),
    )
    params = {
        "tenant": tenant_id,
        "status": status,
        "tag": tag,
        "sha256": sha256,
        "after_key": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit,
    }
    filter_params = filters.parameters() if filters else {}
    assert not set(params) & set(filter_params), "a filter parameter shadows a listing parameter"
    with conn.cursor(row_factory=class_row(ImageRecord)) as cur:
        cur.execute(statement, {**filter_params, **params})
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


def set_place(
    conn: psycopg.Connection,
    image_id: UUID,
    place: PlaceName | None,
    *,
    looked_up: bool = True,
    only_unread_at: tuple[float, float] | None = None,
) -> bool:
    """Store the place an image's location is in (None: nothing there) and that it was looked up (not
    `looked_up`: cleared, unread); whether stored (`only_unread_at`: only while still unread and the
    location still that latitude/longitude)."""
    unread = " AND place_at IS NULL AND latitude = %(lat)s AND longitude = %(lon)s" if only_unread_at else ""
    lat, lon = only_unread_at or (None, None)
    cur = conn.execute(
        f"""
        UPDATE images SET place_city = %(city)s, place_region = %(region)s, place_country = %(country)s,
               place_country_code = %(code)s, place_at = CASE WHEN %(looked_up)s THEN now() END
        WHERE id = %(id)s{unread}
        """,
        {
            "city": place.city if place else None,
            "region": place.region if place else None,
            "country": place.country if place else None,
            "code": place.country_code if place else None,
            "looked_up": looked_up,
            "id": image_id,
            "lat": lat,
            "lon": lon,
        },
    )
    return cur.rowcount == 1


def location(conn: psycopg.Connection, image_id: UUID) -> tuple[float, float] | None:
    """An image's stored latitude and longitude; None when it has none."""
    row = conn.execute(
        "SELECT latitude, longitude FROM images WHERE id = %s AND latitude IS NOT NULL", (image_id,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def set_enrich_failures(conn: psycopg.Connection, image_id: UUID, failures: dict[str, str]) -> None:
    """The enrichment steps that failed on an image's current version (step -> why), as ingestion found."""
    conn.execute(
        "UPDATE images SET enrich_failures = %s::jsonb "
        "WHERE id = %s AND enrich_failures IS DISTINCT FROM %s::jsonb",
        (json.dumps(failures), image_id, json.dumps(failures)),
    )


def clear_enrich_failure(conn: psycopg.Connection, image_id: UUID, step: str) -> None:
    conn.execute(
        "UPDATE images SET enrich_failures = enrich_failures - %s WHERE id = %s AND enrich_failures ? %s",
        (step, image_id, step),
    )


def set_auto_tags(
    conn: psycopg.Connection, image_id: UUID, tags: list[str], *, model: str | None, only_unread: bool = False
) -> bool:
    """Store the labels the model gave an image and what gave them (None: not labelled); whether stored
    (`only_unread`: not when labels of this `model` are there already)."""
    unread = " AND auto_tags_model IS DISTINCT FROM %(model)s" if only_unread else ""
    cur = conn.execute(
        f"UPDATE images SET auto_tags = %(tags)s, auto_tags_model = %(model)s WHERE id = %(id)s{unread}",
        {"tags": tags, "model": model, "id": image_id},
    )
    return cur.rowcount == 1


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
