"""Near-duplicate groups of a tenant's images (SQL; the caller owns the transaction).

Two ready images of one tenant are near-duplicates when their pHashes (imagesearch.enrichment.phash) differ
in at most DISTANCE bits, or in at most LOOSE_DISTANCE bits and the active model's vectors have a cosine of
at least MIN_SIMILARITY: pHash alone misses crops and burst shots, and the vector alone would merge other
photos of the same subject. bench/duplicates.py measured the rule (docs/search.md, "Near-duplicates").

A group is `images.duplicate_group`, the id of its earliest image (NULL when alone). A new image joins every
group it matches; several are merged into the one whose first image is the earliest. Deleting members
leaves the rest grouped; a group with one ready member left is not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg.rows import dict_row

from imagesearch import cursors
from imagesearch.db import model_records
from imagesearch.images.repository import COLUMNS, ImageRecord

DISTANCE = 8  # pHash bits (always even: every hash has 32 bits set, barring ties at the median)
LOOSE_DISTANCE = 18
MIN_SIMILARITY = 0.95

# Every image is assigned under its tenant's transaction-scoped advisory lock: of two near-duplicates saved
# at once, the second waits for the first to commit and then finds it (READ COMMITTED: a new snapshot per
# statement). The lock key's namespace keeps it apart from any other advisory lock on a tenant.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('imagesearch.duplicates:' || %s::text, 0))"
_DISTANCE_SQL = "bit_count((i.phash # %(phash)s::bigint)::bit(64))"


def matches(distance: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """The rule on arrays of pHash distances and cosine similarities (the SQL's twin, for the bench)."""
    return (distance <= DISTANCE) | ((distance <= LOOSE_DISTANCE) & (similarity >= MIN_SIMILARITY))


def describe_rule() -> str:
    return f"pHash <= {DISTANCE}, or <= {LOOSE_DISTANCE} with cosine >= {MIN_SIMILARITY}"


@dataclass(frozen=True)
class Candidate:
    id: UUID
    duplicate_group: UUID | None
    distance: int
    similarity: float | None


def candidates(conn: psycopg.Connection, *, tenant_id: UUID, image_id: UUID, phash: int) -> list[Candidate]:
    """The tenant's other ready images within LOOSE_DISTANCE, with their cosine to `image_id` under the
    active model (None without a vector). A scan of the tenant's hashed images with one cheap predicate:
    ~10 ms at 100k images (bench/duplicates.py --scale); the vectors are read for the few that pass."""
    model = model_records.active_model(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""
            WITH near AS MATERIALIZED (
                SELECT i.id, i.duplicate_group, {_DISTANCE_SQL} AS distance
                FROM images i
                WHERE i.tenant_id = %(tenant)s AND i.status = 'ready' AND i.phash IS NOT NULL
                  AND i.id <> %(id)s AND {_DISTANCE_SQL} <= %(loose)s
            )
            SELECT n.id, n.duplicate_group, n.distance, 1 - (e.embedding <=> mine.embedding) AS similarity
            FROM near n
            LEFT JOIN embeddings e ON e.image_id = n.id AND e.model_id = %(model)s
            LEFT JOIN embeddings mine ON mine.image_id = %(id)s AND mine.model_id = %(model)s
            """,
            {
                "tenant": tenant_id,
                "id": image_id,
                "phash": phash,
                "loose": LOOSE_DISTANCE,
                "model": model.id if model else None,
            },
        ).fetchall()
    return [Candidate(**row) for row in rows]


def explain_candidates(conn: psycopg.Connection, *, tenant_id: UUID, phash: int) -> str:
    """The candidate scan's access path (bench/duplicates.py --scale)."""
    plan = conn.execute(
        f"EXPLAIN SELECT i.id FROM images i WHERE i.tenant_id = %(tenant)s AND i.status = 'ready' "
        f"AND i.phash IS NOT NULL AND {_DISTANCE_SQL} <= %(loose)s",
        {"tenant": tenant_id, "phash": phash, "loose": LOOSE_DISTANCE},
    ).fetchall()
    return " / ".join(line[0].strip() for line in plan if "Scan" in line[0])


def is_match(candidate: Candidate) -> bool:
    """The rule (`matches`) on one candidate; without a vector, only the pHash can match."""
    similarity = -1.0 if candidate.similarity is None else candidate.similarity
    return bool(matches(np.asarray(candidate.distance), np.asarray(similarity)))


def assign(conn: psycopg.Connection, *, tenant_id: UUID, image_id: UUID, phash: int) -> UUID | None:
    """Store the image's pHash and put it in the group of every image it matches (merging them); its
    group, or None when it matches nothing. Holds the tenant's duplicate lock until the transaction ends."""
    conn.execute(_LOCK, (tenant_id,))
    conn.execute(
        "UPDATE images SET phash = %s, duplicate_group = NULL WHERE tenant_id = %s AND id = %s",
        (phash, tenant_id, image_id),
    )
    matched = [
        c for c in candidates(conn, tenant_id=tenant_id, image_id=image_id, phash=phash) if is_match(c)
    ]
    if not matched:
        return None
    groups = sorted({c.duplicate_group for c in matched if c.duplicate_group is not None})
    ids = [image_id, *(c.id for c in matched)]
    # Everyone in the matched groups, the matched images and this one, in the group of the earliest of them
    # (the group it is in, or its own id): a group keeps its id when its first image is deleted.
    row = conn.execute(
        """
        WITH members AS (
            SELECT id, created_at, coalesce(duplicate_group, id) AS grouped_as FROM images
            WHERE tenant_id = %(tenant)s AND (id = ANY(%(ids)s) OR duplicate_group = ANY(%(groups)s))
        ),
        first AS (SELECT grouped_as AS id FROM members ORDER BY created_at, id LIMIT 1),
        moved AS (
            UPDATE images SET duplicate_group = (SELECT id FROM first)
            WHERE tenant_id = %(tenant)s AND id IN (SELECT id FROM members)
        )
        SELECT id FROM first
        """,
        {"tenant": tenant_id, "ids": ids, "groups": groups},
    ).fetchone()
    assert row is not None
    group: UUID = row[0]
    return group


# --- listing ------------------------------------------------------------------------------------------------


def encode_cursor(newest: datetime, group: UUID) -> str:
    return cursors.encode_cursor(["duplicates", newest.isoformat(), str(group)])


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Inverse of encode_cursor; InvalidRequest for anything else."""

    def parse(values: Any) -> tuple[datetime, UUID]:
        kind, newest, group = values
        if kind != "duplicates":
            raise ValueError(kind)
        return datetime.fromisoformat(newest), UUID(group)

    return cursors.decode_cursor(cursor, parse)


@dataclass(frozen=True)
class GroupRow:
    group: UUID
    newest: datetime
    size: int


@dataclass(frozen=True)
class Member:
    record: ImageRecord
    distance: int  # pHash bits to the group's first ready image
    similarity: float | None  # cosine of the active model's vectors to it


def list_groups(
    conn: psycopg.Connection, tenant_id: UUID, *, limit: int, after: tuple[datetime, UUID] | None
) -> list[GroupRow]:
    """Groups with two ready members or more, by their newest member (newest first); `after` is the
    (newest, group) of the last group of the previous page. Aggregates the tenant's grouped images
    (index images_duplicate_group)."""
    rows = conn.execute(
        """
        SELECT duplicate_group, newest, size FROM (
            SELECT duplicate_group, max(created_at) AS newest, count(*) AS size
            FROM images
            WHERE tenant_id = %(tenant)s AND duplicate_group IS NOT NULL AND status = 'ready'
            GROUP BY duplicate_group
            HAVING count(*) > 1
        ) g
        WHERE %(after_at)s::timestamptz IS NULL
           OR (newest, duplicate_group) < (%(after_at)s, %(after_id)s::uuid)
        ORDER BY newest DESC, duplicate_group DESC
        LIMIT %(limit)s
        """,
        {
            "tenant": tenant_id,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    ).fetchall()
    return [GroupRow(group=row[0], newest=row[1], size=int(row[2])) for row in rows]


def members(conn: psycopg.Connection, tenant_id: UUID, groups: list[UUID]) -> dict[UUID, list[Member]]:
    """The ready members of each group, oldest first, with their distance to the first."""
    model = model_records.active_model(conn)
    record_columns = ", ".join(f"i.{name}" for name in COLUMNS.split(", "))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""
            SELECT m.*, bit_count((m.phash # m.first_phash)::bit(64)) AS distance,
                   1 - (m.vector <=> m.first_vector) AS similarity
            FROM (
                SELECT {record_columns}, e.embedding AS vector,
                       first_value(i.phash) OVER w AS first_phash,
                       first_value(e.embedding) OVER w AS first_vector
                FROM images i
                LEFT JOIN embeddings e ON e.image_id = i.id AND e.model_id = %(model)s
                WHERE i.tenant_id = %(tenant)s AND i.duplicate_group = ANY(%(groups)s) AND i.status = 'ready'
                WINDOW w AS (PARTITION BY i.duplicate_group ORDER BY i.created_at, i.id)
            ) m
            ORDER BY m.duplicate_group, m.created_at, m.id
            """,
            {"tenant": tenant_id, "groups": groups, "model": model.id if model else None},
        ).fetchall()
    out: dict[UUID, list[Member]] = {}
    for row in rows:
        out.setdefault(row["duplicate_group"], []).append(_member(row))
    return out


def _member(row: dict[str, Any]) -> Member:
    record = ImageRecord.model_validate({name: row[name] for name in ImageRecord.model_fields})
    similarity = row["similarity"]
    return Member(
        record=record,
        distance=int(row["distance"] or 0),
        similarity=None if similarity is None else round(float(similarity), 4),
    )
