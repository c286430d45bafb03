"""Scoring for bench/relevance.py: ranking metrics, precision and recall of a returned set, and the auto
cut-off replayed in Python on a query's candidates, so that cut-off settings and fixed thresholds are tuned
from one fetch of the candidates instead of a query per setting.

`branch_threshold` is the rule of search/sql.py `_cut`: a change there is a change here. The bench runs the
chosen settings through SQL as well and says whether the replay returned the same sets.
"""

from __future__ import annotations

import bisect
import math
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

TIE = 0.001  # settings within this of the best figure count as tied
P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True)
class Row:
    """A candidate of a query: its result score and its branch scores (None outside that branch)."""

    id: uuid.UUID
    score: float
    vector: float | None  # cosine similarity, 1 - vector_distance
    keyword: float | None


def recall_ndcg(found: Sequence[uuid.UUID], relevant: frozenset[uuid.UUID], k: int = 10) -> tuple[float, float]:
    """recall@k = |relevant in the top k| / min(k, |relevant|), and nDCG@k with binary gains."""
    gains = [1.0 if f in relevant else 0.0 for f in found[:k]]
    ideal = min(k, len(relevant))
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1 / math.log2(i + 2) for i in range(ideal))
    return sum(gains) / ideal, dcg / idcg


def prf(hits: int, returned: int, relevant: int, limit: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of a returned set of `returned` ids, `hits` of them relevant. Recall's
    denominator is min(|relevant|, limit), what a set of at most `limit` can hold; an empty set has
    precision 0."""
    precision = hits / returned if returned else 0.0
    recall = hits / min(relevant, limit)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def set_scores(
    returned: Sequence[uuid.UUID], relevant: frozenset[uuid.UUID], limit: int
) -> tuple[float, float, float]:
    return prf(sum(1 for r in returned if r in relevant), len(returned), len(relevant), limit)


def mean_by_kind(kinds: Sequence[str], values: Sequence[tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    """The mean of each kind's values, and of them all under "all"."""
    groups: dict[str, list[tuple[float, ...]]] = {}
    for kind, value in zip(kinds, values, strict=True):
        groups.setdefault(kind, []).append(value)
    groups["all"] = list(values)
    return {kind: tuple(float(x) for x in np.mean(v, axis=0)) for kind, v in groups.items()}


# --- the cut-off, replayed ---------------------------------------------------------------------------------
def branch_threshold(
    values: Sequence[tuple[float, uuid.UUID]], gap: float, min_results: int, *, above_mean: bool = False
) -> float | None:
    """The last kept score of a branch under cutoff auto (search/sql.py `_cut`), None for no cut: the
    scores sorted high to low (ties by id), the largest drop after position `min_results` or later (the
    first of equal drops), a cut when it is positive and at least `gap` times the mean drop (spread over
    n - 1). `above_mean`: a variant that looks only at drops from scores at or above the branch's mean."""
    ordered = [v for v, _ in sorted(values, key=lambda t: (-t[0], t[1]))]
    n = len(ordered)
    if n == 0:
        return None
    floor = sum(ordered) / n if above_mean else -math.inf
    best: tuple[float, float] | None = None  # (drop, score before it)
    for i in range(max(min_results, 1) - 1, n - 1):
        if ordered[i] < floor:
            break
        drop = ordered[i] - ordered[i + 1]
        if best is None or drop > best[0]:
            best = (drop, ordered[i])
    spread = ordered[0] - ordered[-1]
    if best is not None and best[0] > 0 and best[0] >= gap * spread / max(n - 1, 1):
        return best[1]
    return None


def cut_rows(
    rows: Sequence[Row], gap: float, min_results: int, *, hybrid: bool, above_mean: bool = False
) -> list[Row]:
    """The candidates cutoff auto keeps: vector mode by its branch's cut, hybrid by either branch's."""
    branches: list[Callable[[Row], float | None]] = [lambda r: r.vector]
    if hybrid:
        branches.append(lambda r: r.keyword)
    keep: list[Callable[[Row], bool]] = []
    for value in branches:
        scored = [(v, r.id) for r in rows if (v := value(r)) is not None]
        threshold = branch_threshold(scored, gap, min_results, above_mean=above_mean)
        keep.append(lambda r, value=value, t=threshold: _at_least(value(r), t))  # type: ignore[misc]
    return [r for r in rows if any(k(r) for k in keep)]


def _at_least(value: float | None, threshold: float | None) -> bool:
    return value is not None and (threshold is None or value >= threshold)


def returned(rows: Sequence[Row], limit: int, min_score: float | None = None) -> list[uuid.UUID]:
    """The first `limit` rows by score (ties by id), as the statement pages them, past `min_score`."""
    kept = [r for r in rows if min_score is None or r.score >= min_score]
    return [r.id for r in sorted(kept, key=lambda r: (-r.score, r.id))[:limit]]


# --- tuning ------------------------------------------------------------------------------------------------
def middle_of_best(scored: Sequence[tuple[P, float]]) -> P:
    """The setting with the best figure; among settings within TIE of it, the middle one (in the given
    order), so that a plateau is not left at its edge."""
    best = max(s for _, s in scored)
    tied = [p for p, s in scored if s >= best - TIE]
    return tied[(len(tied) - 1) // 2]


def threshold_curve(
    candidates: Sequence[Sequence[Row]], relevant: Sequence[frozenset[uuid.UUID]], limit: int, grid: Sequence[float]
) -> list[tuple[float, float]]:
    """Mean F1 of the returned sets under each fixed min_score of `grid`."""
    prepared = []
    for rows, rel in zip(candidates, relevant, strict=True):
        ordered = sorted(rows, key=lambda r: (-r.score, r.id))
        negated = [-r.score for r in ordered]
        hits = np.concatenate([[0], np.cumsum([r.id in rel for r in ordered])])
        prepared.append((negated, hits, len(rel)))
    curve = []
    for t in grid:
        f1s = []
        for negated, hits, n_relevant in prepared:
            k = min(bisect.bisect_right(negated, -t), limit)  # scores >= t, at most `limit` of them
            f1s.append(prf(int(hits[k]), k, n_relevant, limit)[2])
        curve.append((t, float(np.mean(f1s))))
    return curve


def cutoff_table(
    candidates: Mapping[str, Sequence[Sequence[Row]]],
    relevant: Sequence[frozenset[uuid.UUID]],
    limit: int,
    gaps: Sequence[float],
    mins: Sequence[int],
    *,
    above_mean: bool = False,
) -> dict[tuple[float, int], dict[str, float]]:
    """Mean F1 of the returned sets of each mode ("vector", "hybrid") under each (cutoff_gap,
    cutoff_min_results)."""
    table: dict[tuple[float, int], dict[str, float]] = {}
    for m in mins:
        for g in gaps:
            table[(g, m)] = {
                mode: float(
                    np.mean(
                        [
                            set_scores(
                                returned(cut_rows(rows, g, m, hybrid=mode == "hybrid", above_mean=above_mean), limit),
                                rel,
                                limit,
                            )[2]
                            for rows, rel in zip(cands, relevant, strict=True)
                        ]
                    )
                )
                for mode, cands in candidates.items()
            }
    return table


def pick_cutoff(table: Mapping[tuple[float, int], Mapping[str, float]]) -> tuple[float, int]:
    """The setting with the best F1 averaged over the modes; among those within TIE of it, the smallest
    cutoff_min_results and the middle of its tied gaps."""
    scored = {key: float(np.mean(list(f1.values()))) for key, f1 in table.items()}
    best = max(scored.values())
    tied = [key for key, s in scored.items() if s >= best - TIE]
    smallest = min(m for _, m in tied)
    gaps = sorted(g for g, m in tied if m == smallest)
    return gaps[(len(gaps) - 1) // 2], smallest
