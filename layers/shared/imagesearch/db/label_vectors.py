"""SQL on `label_vectors`: a label vocabulary's text vectors per (model, vocabulary sha256)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg


@dataclass(frozen=True)
class StoredLabelVectors:
    labels: tuple[str, ...]
    matrix: np.ndarray  # (labels, dim) float32


def get(conn: psycopg.Connection, *, model_id: str, vocabulary_sha256: str) -> StoredLabelVectors | None:
    """The stored vectors of a (model, vocabulary), or None."""
    row = conn.execute(
        "SELECT labels, dim, vectors FROM label_vectors WHERE model_id = %s AND vocabulary_sha256 = %s",
        (model_id, vocabulary_sha256),
    ).fetchone()
    if row is None:
        return None
    labels, dim, data = row
    matrix = np.frombuffer(bytes(data), dtype="<f4").reshape(len(labels), dim).astype(np.float32)
    return StoredLabelVectors(tuple(labels), matrix)


def put(
    conn: psycopg.Connection,
    *,
    model_id: str,
    vocabulary_sha256: str,
    labels: Sequence[str],
    matrix: np.ndarray,
) -> None:
    """Store the vectors of a (model, vocabulary); the first writer's stand (they are the same vectors)."""
    conn.execute(
        "INSERT INTO label_vectors (model_id, vocabulary_sha256, labels, dim, vectors) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model_id, vocabulary_sha256) DO NOTHING",
        (model_id, vocabulary_sha256, list(labels), matrix.shape[1], matrix.astype("<f4").tobytes()),
    )
