"""SQL on the `models` table: which embedding models a deployment has, and the state of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from imagesearch.db import embeddings

ModelState = Literal["backfill", "active", "retired"]

# Held exclusively while the set of embedding models changes (register, activate, resume) and shared while
# an image is saved ready, so a save either sees a model registered meanwhile or commits before it exists.
_LOCK_MODELS = "SELECT pg_advisory_xact_lock(hashtext('imagesearch.register_model'))"
_LOCK_MODELS_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext('imagesearch.register_model'))"


@dataclass
class ModelRecord:
    id: str
    dim: int
    state: str
    bundle_uri: str | None


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
    conn.execute(_LOCK_MODELS)
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
    # No vectors of this model exist yet, so building the index now costs nothing.
    embeddings.create_index(conn, model_id, dim)
    return ModelRecord(id=model_id, dim=dim, state=state, bundle_uri=bundle_uri)


_SELECT = "SELECT id, dim, state, bundle_uri FROM models"


def get_model(conn: psycopg.Connection, model_id: str) -> ModelRecord | None:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        return cur.execute(f"{_SELECT} WHERE id = %s", (model_id,)).fetchone()


def active_model(conn: psycopg.Connection) -> ModelRecord | None:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        return cur.execute(f"{_SELECT} WHERE state = 'active'").fetchone()


def models_in_state(conn: psycopg.Connection, *states: ModelState) -> list[ModelRecord]:
    with conn.cursor(row_factory=class_row(ModelRecord)) as cur:
        return cur.execute(f"{_SELECT} WHERE state = ANY(%s) ORDER BY created_at", (list(states),)).fetchall()


def activate(conn: psycopg.Connection, model_id: str) -> None:
    """Make `model_id` the model search answers with; the previous active model is retired (vectors kept)."""
    conn.execute(_LOCK_MODELS)
    conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active' AND id <> %s", (model_id,))
    conn.execute("UPDATE models SET state = 'active', activated_at = now() WHERE id = %s", (model_id,))


def resume_backfill(conn: psycopg.Connection, model_id: str) -> bool:
    """Put a retired model back in back-fill (a roll-back starts here); False when it was not retired."""
    conn.execute(_LOCK_MODELS)
    cur = conn.execute(
        "UPDATE models SET state = 'backfill' WHERE id = %s AND state = 'retired'", (model_id,)
    )
    return cur.rowcount == 1


def embedding_model_ids(conn: psycopg.Connection) -> set[str]:
    """The models every new image needs a vector of (back-fill and active), read under the shared lock:
    until this transaction ends, no model joins them, so an image saved with these vectors is complete."""
    conn.execute(_LOCK_MODELS_SHARED)
    rows = conn.execute("SELECT id FROM models WHERE state IN ('backfill', 'active')").fetchall()
    return {row[0] for row in rows}
