"""SQL on the `embeddings` table: one vector per (image, model), and each model's partial HNSW index.

The search statement's own vector branch lives with the rest of the search SQL (imagesearch.search.sql);
it uses `vector_expression` and `stored_vector` from here, so the index and its queries cannot drift apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

# HNSW build parameters (pgvector's defaults, which bench/search.py measures recall for).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def index_name(model_id: str) -> str:
    """A stable, identifier-safe index name per model."""
    return "embeddings_hnsw_" + hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:16]


def vector_expression(dim: int) -> sql.Composable:
    """`embedding::halfvec(dim)`: the expression a model's partial HNSW index is built on.

    Embeddings are stored as `halfvec` (two bytes a dimension: half the table and index of `vector`, and
    recall within the index's own variance, bench/halfvec.py; docs/search.md "Storage"). Queries must use
    the same expression and the literal model id for the planner to pick the index.
    """
    return sql.SQL("embedding::halfvec({})").format(sql.Literal(dim))


def stored_vector(model_id: str, dim: int) -> sql.Composable:
    """The stored vector of image `%(query_image)s` of tenant `%(tenant)s`, as a subquery (by example)."""
    return sql.SQL(
        "(SELECT {expr} FROM embeddings WHERE image_id = %(query_image)s AND model_id = {model} "
        "AND tenant_id = %(tenant)s)"
    ).format(expr=vector_expression(dim), model=sql.Literal(model_id))


def stored_vectors(model_id: str, dim: int) -> sql.Composed:
    """Image ids and vectors (pgvector's binary halfvec) of images `%(ids)s` of tenant `%(tenant)s`."""
    return sql.SQL(
        "SELECT image_id, halfvec_send({expr}) FROM embeddings "
        "WHERE image_id = ANY(%(ids)s::uuid[]) AND model_id = {model} AND tenant_id = %(tenant)s"
    ).format(expr=vector_expression(dim), model=sql.Literal(model_id))


def create_index(conn: psycopg.Connection, model_id: str, dim: int) -> None:
    """The model's partial HNSW index (cosine), if it does not exist yet."""
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw (({expr}) halfvec_cosine_ops) "
            "WITH (m = {m}, ef_construction = {efc}) WHERE model_id = {model}"
        ).format(
            name=sql.Identifier(index_name(model_id)),
            expr=vector_expression(dim),
            m=sql.Literal(HNSW_M),
            efc=sql.Literal(HNSW_EF_CONSTRUCTION),
            model=sql.Literal(model_id),
        )
    )


def drop_index(conn: psycopg.Connection, model_id: str) -> None:
    """Drop the model's index (bulk loads build it again afterwards, which is faster)."""
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(model_id))))


def upsert(conn: psycopg.Connection, *, image_id: UUID, model_id: str, embedding: np.ndarray) -> bool:
    """Store the image's vector of `model_id`, replacing an older one (a redelivered event never adds a
    second); False when the image is gone. The image row is locked until the transaction ends, so it cannot
    be deleted in between."""
    cur = conn.execute(
        """
        INSERT INTO embeddings (image_id, model_id, tenant_id, embedding)
        SELECT i.id, %s, i.tenant_id, %s FROM images i WHERE i.id = %s FOR KEY SHARE
        ON CONFLICT (image_id, model_id) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = now()
        """,
        (model_id, embedding.astype(np.float32), image_id),
    )
    return cur.rowcount == 1


def insert_missing(conn: psycopg.Connection, *, image_id: UUID, model_id: str, embedding: np.ndarray) -> bool:
    """Store the vector of a back-filled image unless it has one of `model_id` already (a duplicate
    message, or the upload path got there first) or is no longer ready; True when stored."""
    cur = conn.execute(
        """
        INSERT INTO embeddings (image_id, model_id, tenant_id, embedding)
        SELECT i.id, %s, i.tenant_id, %s FROM images i WHERE i.id = %s AND i.status = 'ready' FOR KEY SHARE
        ON CONFLICT (image_id, model_id) DO NOTHING
        """,
        (model_id, embedding.astype(np.float32), image_id),
    )
    return cur.rowcount == 1


def delete_for_image(conn: psycopg.Connection, image_id: UUID) -> None:
    """Every model's vector of the image."""
    conn.execute("DELETE FROM embeddings WHERE image_id = %s", (image_id,))


def exists(conn: psycopg.Connection, image_id: UUID, model_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM embeddings WHERE image_id = %s AND model_id = %s", (image_id, model_id)
    ).fetchone()
    return row is not None


def stored(conn: psycopg.Connection, image_id: UUID, model_id: str) -> np.ndarray | None:
    """The image's stored vector of the model (float32), or None."""
    row = conn.execute(
        "SELECT embedding::vector FROM embeddings WHERE image_id = %s AND model_id = %s", (image_id, model_id)
    ).fetchone()
    return None if row is None else np.asarray(row[0].to_numpy(), dtype=np.float32)


_MISSING = """
    FROM images i
    WHERE i.status = 'ready'
      AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = %(model)s)
"""


def missing(conn: psycopg.Connection, model_id: str, *, after: UUID, limit: int) -> list[tuple[UUID, str]]:
    """(id, storage key) of ready images without a vector of `model_id`, by id after `after` (resumable)."""
    rows = conn.execute(
        f"SELECT i.id, i.storage_key {_MISSING} AND i.id > %(after)s ORDER BY i.id LIMIT %(limit)s",
        {"model": model_id, "after": after, "limit": limit},
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def missing_among(
    conn: psycopg.Connection, model_id: str, image_ids: Sequence[UUID]
) -> list[tuple[UUID, str]]:
    """(id, storage key) of those of `image_ids` that are ready and lack a vector of `model_id`, by id."""
    rows = conn.execute(
        f"SELECT i.id, i.storage_key {_MISSING} AND i.id = ANY(%(ids)s) ORDER BY i.id",
        {"model": model_id, "ids": list(image_ids)},
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def missing_count(conn: psycopg.Connection, model_id: str) -> int:
    """How many ready images lack a vector of `model_id`."""
    row = conn.execute(f"SELECT count(*) {_MISSING}", {"model": model_id}).fetchone()
    return int(row[0]) if row else 0


def coverage(conn: psycopg.Connection) -> list[tuple[str, str, int, int, int]]:
    """(model id, state, dim, vectors, ready images) of every model, oldest first."""
    rows = conn.execute(
        """
        SELECT m.id, m.state, m.dim,
               (SELECT count(*) FROM embeddings e WHERE e.model_id = m.id) AS vectors,
               (SELECT count(*) FROM images WHERE status = 'ready') AS ready
        FROM models m ORDER BY m.created_at
        """
    ).fetchall()
    return [(row[0], row[1], int(row[2]), int(row[3]), int(row[4])) for row in rows]


@dataclass(frozen=True)
class ModelCoverage:
    """How far a model's vectors cover the ready images."""

    model_id: str
    state: str
    dim: int
    bundle_uri: str | None
    vectors: int
    ready: int  # ready images, of every tenant
    missing: int  # ready images without a vector of this model

    @property
    def complete(self) -> bool:
        return self.missing == 0

    @property
    def percent(self) -> float:
        return 100.0 * (self.ready - self.missing) / self.ready if self.ready else 100.0


def model_coverage(conn: psycopg.Connection, model_id: str | None = None) -> list[ModelCoverage]:
    """Coverage of every model (oldest first), or of `model_id` alone (an empty list when unknown)."""
    rows = conn.execute(
        """
        SELECT m.id, m.state, m.dim, m.bundle_uri,
               (SELECT count(*) FROM embeddings e WHERE e.model_id = m.id) AS vectors,
               ready.n AS ready,
               (SELECT count(*) FROM images i WHERE i.status = 'ready' AND NOT EXISTS
                   (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.model_id = m.id)) AS missing
        FROM models m, (SELECT count(*) AS n FROM images WHERE status = 'ready') AS ready
        WHERE %(model)s::text IS NULL OR m.id = %(model)s
        ORDER BY m.created_at
        """,
        {"model": model_id},
    ).fetchall()
    return [
        ModelCoverage(
            model_id=row[0],
            state=row[1],
            dim=int(row[2]),
            bundle_uri=row[3],
            vectors=int(row[4]),
            ready=int(row[5]),
            missing=int(row[6]),
        )
        for row in rows
    ]
