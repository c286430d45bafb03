"""Re-ordering a pool of results by their stored vectors: maximal marginal relevance and duplicate collapse.

The statement returns the best `candidates` results of the relevant set with their vectors (pgvector's
binary halfvec); these functions re-order that pool, and the page is a slice of the new order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The pool diversity and collapse re-order: the best results of the relevant set, at most this many (a
# larger pool costs ~2 ms more per 100 rows, bench/search_features.py; docs/search.md).
POOL = 100


def unit_rows(blobs: Sequence[bytes | None], dim: int) -> np.ndarray:
    """pgvector's `halfvec_send` values (int16 dim, int16 unused, dim big-endian half floats) as unit rows
    of one float32 matrix, decoded in one pass; a missing vector is a zero row (similar to nothing)."""
    size = 4 + 2 * dim
    empty = bytes(size)
    buffer = b"".join(blob if blob is not None and len(blob) == size else empty for blob in blobs)
    halves = np.frombuffer(buffer, dtype=">f2").reshape(len(blobs), dim + 2)[:, 2:]
    matrix = halves.astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def mmr_order(scores: Sequence[float], similarity: np.ndarray, diversity: float, count: int) -> list[int]:
    """The first `count` indexes of the pool (given best first) in maximal-marginal-relevance order: each
    next pick maximises (1 - diversity) * relevance - diversity * (its highest similarity to a result
    already picked). Relevance is the score scaled to [0, 1] over the pool; 0 keeps the given order."""
    n = len(scores)
    count = min(count, n)
    if diversity <= 0 or n == 0:
        return list(range(count))
    values = np.asarray(scores, dtype=np.float64)
    spread = float(values.max() - values.min())
    relevance = (values - values.min()) / spread if spread > 0 else np.ones(n)
    closest = np.zeros(n)  # highest similarity to a picked result (none picked yet)
    picked = np.zeros(n, dtype=bool)
    order: list[int] = []
    for _ in range(count):
        gain = (1 - diversity) * relevance - diversity * closest
        gain[picked] = -np.inf
        best = int(np.argmax(gain))  # ties: the better-ranked one (argmax takes the first)
        order.append(best)
        picked[best] = True
        if len(order) == 1:
            closest = similarity[best].astype(np.float64)  # the first pick: its similarities as they are
        else:
            closest = np.maximum(closest, similarity[best])
    return order


def collapse(
    order: Sequence[int],
    similarity: np.ndarray,
    threshold: float,
    groups: Sequence[object | None] | None = None,
) -> list[tuple[int, int]]:
    """Walk `order` and keep one result per group of near-duplicates (cosine similarity >= threshold to a
    result kept before it, and a vector at all; or the same `groups` entry, the stored near-duplicate group,
    as one kept before it): (index, how many it stands for besides itself)."""
    n = similarity.shape[0]
    kept = np.zeros(n, dtype=bool)
    counts: dict[int, int] = {}
    has_vector = similarity.diagonal() > 0
    kept_groups: dict[object, int] = {}  # stored group -> the result kept for it
    for index in order:
        group = groups[index] if groups is not None else None
        if group is not None and group in kept_groups:
            counts[kept_groups[group]] += 1
            continue
        if has_vector[index] and kept.any():
            row = np.where(kept, similarity[index], -np.inf)
            best = int(np.argmax(row))
            if row[best] >= threshold:
                counts[best] += 1
                if group is not None:  # the rest of its stored group goes the same way
                    kept_groups.setdefault(group, best)
                continue
        kept[index] = True
        counts[index] = 0
        if group is not None:
            kept_groups[group] = index
    return [(index, counts[index]) for index in order if kept[index]]
