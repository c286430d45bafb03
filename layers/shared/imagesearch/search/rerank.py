"""Re-ordering a pool of results by their stored vectors: maximal marginal relevance and duplicate collapse.

The statement returns the best `candidates` results of the relevant set with their vectors (pgvector's
binary halfvec); these functions re-order that pool, and the page is a slice of the new order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decode_halfvec(data: bytes | None, dim: int) -> np.ndarray | None:
    """pgvector's `halfvec_send`: int16 dim, int16 unused, then dim big-endian half floats."""
    if data is None:
        return None
    return np.frombuffer(data, dtype=">f2", count=dim, offset=4).astype(np.float32)


def unit_matrix(vectors: Sequence[np.ndarray | None], dim: int) -> np.ndarray:
    """The pool's vectors as unit rows; a missing vector is a zero row (similar to nothing)."""
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None:
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                matrix[i] = vector / norm
    return matrix


def mmr_order(scores: Sequence[float], vectors: np.ndarray, diversity: float) -> list[int]:
    """Indexes of the pool (given best first) in maximal-marginal-relevance order: each next pick maximises
    (1 - diversity) * relevance - diversity * (its highest similarity to a result already picked).
    Relevance is the score scaled to [0, 1] over the pool; 0 keeps the given order."""
    n = len(scores)
    if n == 0:
        return []
    if diversity <= 0:
        return list(range(n))
    values = np.asarray(scores, dtype=np.float64)
    spread = float(values.max() - values.min())
    relevance = (values - values.min()) / spread if spread > 0 else np.ones(n)
    similarity = vectors @ vectors.T
    closest = np.full(n, -np.inf)  # highest similarity to a picked result (none picked yet)
    picked = np.zeros(n, dtype=bool)
    order: list[int] = []
    for _ in range(n):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        gain = (1 - diversity) * relevance - diversity * redundancy
        gain[picked] = -np.inf
        best = int(np.argmax(gain))  # ties: the better-ranked one (argmax takes the first)
        order.append(best)
        picked[best] = True
        closest = np.maximum(closest, similarity[best])
    return order


def collapse(order: Sequence[int], vectors: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Walk `order` and keep one result per group of near-duplicates (cosine similarity >= threshold to a
    result kept before it): (index, how many it stands for besides itself)."""
    kept: list[int] = []
    counts: dict[int, int] = {}
    for index in order:
        if kept and vectors[index].any():
            similarity = vectors[kept] @ vectors[index]
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                counts[kept[best]] += 1
                continue
        kept.append(index)
        counts[index] = 0
    return [(index, counts[index]) for index in kept]
