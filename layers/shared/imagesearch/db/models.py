"""Embedding models in the database: registration (with its HNSW index), state, and vector upserts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

ModelState = Literal["backfill", "active", "retired"]

# HNSW build parameters (pgvector's defaults, which bench/search.py measures recall for).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


@dataclass
class ModelRecord:
    id: str
    dim: int
    state: str
    bundle_uri: str | None


def index_name(model_id: str) -> str:
    """A stable, identifier-safe index name per model."""
    return "embeddings_hnsw_" + hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:16]


def vector_expression(model: ModelRecord) -> sql.Composable:
    """`embedding::vector(dim)`: the expression the model's partial HNSW index is built on.

    Queries must use the same expression and the literal model id for the planner to pick the index.
    """
    return sql.SQL("embedding::vector({})").format(sql.Literal(model.dim))


def register_model(
    conn: psycopg.Connection,
    *,
    model_id: str,
    dim: int,
    manifest: dict[str, Any] | None = None,
    bundle_uri: str | None = None,
) -> ModelRecord:
    """Record the model (idempotent) and create its partial HNSW index; the first model becomes active."""
    # One registration at a time: two cold containers may meet here.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('imagesearch.register_model'))")
    existing = get_model(conn, model_id)
    if existing is not None:
        if existing.dim != dim:
            raise ValueError(f"model {model_id} is registered with dimension {existing.dim}, not {dim}")
        if bundle_uri and existing.bundle_uri != bundle_uri:
            conn.execute("UPDATE models SET bundle_uri = %s WHERE id = %s", (bundle_uri, model_id))
            existing.bundle_uri = bundle_uri
        return existing
    has_active = conn.execute("SELECT 1 FROM models WHERE state = 'active'").fetchone() is not None
    state: ModelState = "backfill" if has_active else "active"
    conn.execute(
        """
        INSERT INTO models (id, dim, state, bundle_uri, manifest, activated_at)
        VALUES (%s, %s, %s, %s, %s, CASE WHEN %s = 'active' THEN now() END)
        """,
        (model_id, dim, state, bundle_uri, Jsonb(manifest or {}), state),
    )
    record = ModelRecord(id=model_id, dim=dim, state=state, bundle_uri=bundle_uri)
    # No vectors of this model exist yet, so building the index now costs nothing.
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw (({expr}) vector_cosine_ops) "
            "WITH (m = {m}, ef_construction = {efc}) WHERE model_id = {model}"
        ).format(
            name=sql.Identifier(index_name(model_id)),
            expr=vector_expression(record),
            m=sql.Literal(HNSW_M),
            efc=sql.Literal(HNSW_EF_CONSTRUCTION),
            model=sql.Literal(model_id),
        )
    )
    return record


def get_model(conn: psycopg.Connection, model_id: str) -> ModelRecord | None:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        cur.execute("SELECT id, dim, state, bundle_uri FROM models WHERE id = %s", (model_id,))
        return cur.fetchone()


def active_model(conn: psycopg.Connection) -> ModelRecord | None:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        cur.execute("SELECT id, dim, state, bundle_uri FROM models WHERE state = 'active'")
        return cur.fetchone()


def models_in_state(conn: psycopg.Connection, state: ModelState) -> list[ModelRecord]:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        cur.execute(
            "SELECT id, dim, state, bundle_uri FROM models WHERE state = %s ORDER BY created_at", (state,)
        )
        return cur.fetchall()


def activate(conn: psycopg.Connection, model_id: str) -> None:
    """Make `model_id` the model search answers with; the previous active model is retired (vectors kept)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('imagesearch.register_model'))")
    conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active' AND id <> %s", (model_id,))
    conn.execute("UPDATE models SET state = 'active', activated_at = now() WHERE id = %s", (model_id,))


def upsert_embedding(
    conn: psycopg.Connection, *, image_id: UUID, tenant_id: UUID, model_id: str, embedding: np.ndarray
) -> None:
    """One vector per (image, model): a redelivered event replaces it, never adds a second."""
    conn.execute(
        """
        INSERT INTO embeddings (image_id, model_id, tenant_id, embedding) VALUES (%s, %s, %s, %s)
        ON CONFLICT (image_id, model_id) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = now()
        """,
        (image_id, model_id, tenant_id, embedding.astype(np.float32)),
    )
