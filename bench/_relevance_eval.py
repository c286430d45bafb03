"""The measuring side of bench/relevance.py: its records (queries, recommendations, a seed's figures),
ranking metrics, precision and recall of a returned set, replays in Python of what the search statement
does (so that settings are tuned from one fetch of each query's candidates instead of a query per
setting), the choice of settings, and the report's tables.

`branch_threshold` is the rule of search/sql.py `_cut` and `best_score_ranking` the score of its
`_best_score_branch`: a change there is a change here. The bench also runs the chosen settings through SQL
and prints whether the replay returned the same results.
"""

from __future__ import annotations

import bisect
import math
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np

from imagesearch.config import SearchStrategy
from imagesearch.search.plan import Examples
from imagesearch.search.schemas import Example, RecommendStrategy, SearchMode
from imagesearch.tables import format_table

TIE = 0.001  # settings within this of the best figure count as tied
P = TypeVar("P", bound=Hashable)
Rule = Literal["first", "largest"]
MODES: tuple[SearchMode, ...] = ("vector", "keyword", "hybrid")
CUT_MODES: tuple[SearchMode, ...] = ("vector", "hybrid")  # the modes whose cut-offs are measured
STRATEGIES: tuple[RecommendStrategy, ...] = ("average", "best_score")
KINDS = ["visual", "keyword-only", "both", "all"]
REC_KINDS = ["images", "text+image", "two labels", "all"]
SET_LIMIT = 100  # the API's maximum limit: the returned set of a cut-off
BEST_SCORE_BEFORE = "best_score as best positive minus best negative (before) (replay)"
Sets = dict[tuple[str, str], list[tuple[float, float, float]]]  # (mode, cut-off): P, R, F1 of each query


@dataclass(frozen=True)
class Row:
    """A candidate of a query: its result score and its branch scores (None outside that branch)."""

    id: uuid.UUID
    score: float
    vector: float | None  # cosine similarity, 1 - vector_distance
    keyword: float | None


@dataclass(frozen=True)
class CutSetting:
    """cutoff auto's settings (SearchStrategy cutoff_rule, cutoff_gap, cutoff_min_results). `all_drops`:
    rule "largest" as it was before the mean-score floor (the largest drop of the whole list), which the
    product no longer has; --variants replays it for comparison."""

    rule: Rule
    gap: float
    min_results: int
    all_drops: bool = False

    @property
    def name(self) -> str:
        return "largest over all drops (before)" if self.all_drops else self.rule

    def __str__(self) -> str:
        return f"{self.name}, gap {self.gap:g}, min {self.min_results}"


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    relevant: frozenset[uuid.UUID]


@dataclass(frozen=True)
class Recommendation:
    kind: str
    positive: tuple[Example, ...]
    negative: tuple[Example, ...]
    relevant: frozenset[uuid.UUID]


@dataclass(frozen=True)
class Cutoffs:
    """The cut-off settings chosen on the tuning seed."""

    min_score: dict[str, float]  # the best fixed threshold of each mode
    auto: CutSetting
    before: CutSetting | None = None  # --variants: the best setting of rule "largest" over all drops


@dataclass
class SeedRun:
    """What one seed's gallery measured: per query figures, by setting."""

    seed: int
    role: str  # "tuning" or "held-out"
    queries: list[Query]
    recommendations: list[Recommendation]
    modes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    candidates: dict[str, list[list[Row]]] = field(default_factory=dict)
    sets: Sets = field(default_factory=dict)
    replay_agrees: dict[str, int] = field(default_factory=dict)  # queries whose replay equals SQL's
    # The held-out seed: the visual queries in other phrasings (the settings chosen on the standard one).
    phrased: dict[str, Sets] = field(default_factory=dict)  # by phrasing
    phrased_agrees: dict[str, int] = field(default_factory=dict)  # over all the other phrasings
    hindsight: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # best min_score, F1
    recommend: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    grid: dict[tuple[float, float, int], list[tuple[float, float]]] = field(default_factory=dict)
    cutoffs: Cutoffs | None = None  # the cut-off settings measured
    tuning: dict[str, dict[CutSetting, dict[str, float]]] = field(default_factory=dict)  # F1 tables

    @property
    def name(self) -> str:
        return f"{self.seed} ({self.role})"

    def kinds(self) -> list[str]:
        return [q.kind for q in self.queries]


# --- metrics -----------------------------------------------------------------------------------------------
def recall_ndcg(
    found: Sequence[uuid.UUID], relevant: frozenset[uuid.UUID], k: int = 10
) -> tuple[float, float]:
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
def branch_threshold(values: Sequence[tuple[float, uuid.UUID]], setting: CutSetting) -> float | None:
    """The last score a branch keeps under cutoff auto (search/sql.py `_cut`), None for no cut. Scores
    sorted high to low (ties by id); the drops between neighbours and their mean (spread over n - 1);
    from position `min_results` on, the first drop of at least `gap` times the mean (rule "first") or the
    largest drop from a score at or above the mean score, the first of equals (rule "largest"); a cut there
    when that drop is positive and at least `gap` times the mean. `all_drops`: rule "largest" without the
    mean-score floor, as before."""
    ordered = [v for v, _ in sorted(values, key=lambda t: (-t[0], t[1]))]
    n = len(ordered)
    if n == 0:
        return None
    needed = setting.gap * ((ordered[0] - ordered[-1]) / max(n - 1, 1))
    floor = sum(ordered) / n if setting.rule == "largest" and not setting.all_drops else -math.inf
    chosen: tuple[float, float] | None = None  # (drop, the score before it)
    for i in range(max(setting.min_results, 1) - 1, n - 1):
        if ordered[i] < floor:
            break
        drop = ordered[i] - ordered[i + 1]
        if setting.rule == "first":
            if drop >= needed:
                chosen = (drop, ordered[i])
                break
        elif chosen is None or drop > chosen[0]:
            chosen = (drop, ordered[i])
    if chosen is not None and chosen[0] > 0 and chosen[0] >= needed:
        return chosen[1]
    return None


def cut_rows(rows: Sequence[Row], setting: CutSetting, *, hybrid: bool) -> list[Row]:
    """The candidates cutoff auto keeps: vector mode by its branch's cut, hybrid by either branch's."""
    vector = branch_threshold([(r.vector, r.id) for r in rows if r.vector is not None], setting)
    if not hybrid:
        return [r for r in rows if _at_least(r.vector, vector)]
    keyword = branch_threshold([(r.keyword, r.id) for r in rows if r.keyword is not None], setting)
    return [r for r in rows if _at_least(r.vector, vector) or _at_least(r.keyword, keyword)]


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
    candidates: Sequence[Sequence[Row]],
    relevant: Sequence[frozenset[uuid.UUID]],
    limit: int,
    grid: Sequence[float],
) -> list[tuple[float, float]]:
    """Mean F1 of the returned sets under each fixed min_score of `grid`."""
    prepared = []
    for rows, rel in zip(candidates, relevant, strict=True):
        ordered = sorted(rows, key=lambda r: (-r.score, r.id))
        hits = np.concatenate([[0], np.cumsum([r.id in rel for r in ordered])])
        prepared.append(([-r.score for r in ordered], hits, len(rel)))
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
    settings: Sequence[CutSetting],
) -> dict[CutSetting, dict[str, float]]:
    """Mean F1 of the returned sets of each mode ("vector", "hybrid") under each setting."""
    return {
        setting: {
            mode: float(
                np.mean(
                    [
                        set_scores(
                            returned(cut_rows(rows, setting, hybrid=mode == "hybrid"), limit), rel, limit
                        )[2]
                        for rows, rel in zip(cands, relevant, strict=True)
                    ]
                )
            )
            for mode, cands in candidates.items()
        }
        for setting in settings
    }


def pick_cutoff(table: Mapping[CutSetting, Mapping[str, float]]) -> CutSetting:
    """The setting with the best F1 averaged over the modes; among those within TIE of it, the best one's
    rule, the smallest cutoff_min_results, and the middle of its tied gaps."""
    scored = {key: float(np.mean(list(f1.values()))) for key, f1 in table.items()}
    best_key = max(scored, key=lambda k: scored[k])
    tied = [k for k, s in scored.items() if s >= scored[best_key] - TIE and k.rule == best_key.rule]
    smallest = min(k.min_results for k in tied)
    gaps = sorted((k for k in tied if k.min_results == smallest), key=lambda k: k.gap)
    return gaps[(len(gaps) - 1) // 2]


# --- recommend, replayed -----------------------------------------------------------------------------------
def best_score_ranking(
    gallery: np.ndarray,
    ids: Sequence[uuid.UUID],
    examples: Examples,
    exclude: Sequence[uuid.UUID],
    *,
    candidates: int,
    limit: int,
    score: Literal["difference", "qdrant"],
) -> list[uuid.UUID]:
    """A best-score recommendation in numpy (exact neighbours instead of HNSW): the `candidates` nearest
    images of each positive example, the excluded ones (the examples) left out, ranked by "qdrant"
    (search/sql.py `_best_score_branch`: the best weighted similarity to a positive when it beats the best
    weighted similarity to a negative, else minus the square of the latter: Qdrant's best_score) or by
    "difference" (the score before: the best positive similarity minus the best negative one, 0 without
    negatives)."""
    left_out = set(exclude)
    allowed = np.array([i not in left_out for i in ids])
    sims = gallery @ examples.vectors.T * np.asarray(examples.weights)[None, :]  # (images, examples)
    pos = np.asarray(examples.positive)
    pool: set[int] = set()
    for j in np.flatnonzero(pos):
        order = [int(i) for i in np.argsort(-(gallery @ examples.vectors[j])) if allowed[i]]
        pool.update(order[:candidates])
    members = sorted(pool)
    best_pos = sims[members][:, pos].max(axis=1)
    best_neg = sims[members][:, ~pos].max(axis=1) if (~pos).any() else np.full(len(members), -np.inf)
    if score == "difference":
        scores = best_pos - np.where(np.isfinite(best_neg), best_neg, 0.0)
    else:
        scores = np.where(best_pos > best_neg, best_pos, -(best_neg**2))
    ranked = sorted(zip(scores.tolist(), members, strict=True), key=lambda t: (-t[0], ids[t[1]]))
    return [ids[i] for _, i in ranked[:limit]]


# --- the report ---------------------------------------------------------------------------------------------
def print_modes(runs: list[SeedRun]) -> None:
    print("\nSearch by mode (limit 10), live strategy: recall@10 / nDCG@10, mean over queries")
    header = ["mode", "seed"] + [f"{k} R@10 / nDCG@10" for k in KINDS]
    rows = [
        [mode, run.name] + [fmt(mean_by_kind(run.kinds(), run.modes[mode])[k]) for k in KINDS]
        for mode in MODES
        for run in runs
    ]
    print(format_table(header, rows))
    for run in runs:
        means = {mode: mean_by_kind(run.kinds(), run.modes[mode])["all"][1] for mode in MODES}
        ratio = means["hybrid"] / max(means["vector"], means["keyword"])
        print(f"seed {run.name}: hybrid nDCG@10 vs the better single mode: {ratio:.2f}x")


def print_tuning(tuning: SeedRun, live: CutSetting) -> None:
    cutoffs = tuning.cutoffs
    assert cutoffs is not None
    print(f"\nCut-off tuning on seed {tuning.name}: mean F1 of the returned set (limit {SET_LIMIT})")
    print(
        "fixed min_score with the best F1 (0 to 1 by 0.005; ties within 0.001: the middle one): "
        + ", ".join(f"{mode} {cutoffs.min_score[mode]:g}" for mode in CUT_MODES)
    )
    titles = {
        "auto": "cutoff auto (search/sql.py)",
        "before": "rule largest over all drops (before the mean-score floor; replayed, not what the API runs "
        "now)",
    }
    for name, table in tuning.tuning.items():
        print(
            f"\n{titles[name]}: vector F1 / hybrid F1 by rule and cutoff_gap (rows), "
            "cutoff_min_results (columns)"
        )
        mins = sorted({k.min_results for k in table})
        cells = {(k.name, k.gap, k.min_results): f1 for k, f1 in table.items()}
        rows = [
            [rule, f"{gap:g}"]
            + [f"{cells[(rule, gap, m)]['vector']:.3f} / {cells[(rule, gap, m)]['hybrid']:.3f}" for m in mins]
            for rule, gap in dict.fromkeys((k.name, k.gap) for k in table)
        ]
        print(format_table(["rule", "gap"] + [f"min {m}" for m in mins], rows))
        means = {k: float(np.mean(list(f1.values()))) for k, f1 in table.items()}
        chosen = pick_cutoff(table)
        shown = [("chosen", chosen)] + ([("live defaults", live)] if live in table else [])
        print(
            "chosen: the best mean of vector and hybrid F1; ties within 0.001: its rule, the smallest min, "
            "the middle gap"
        )
        for what, setting in shown:
            f1 = table[setting]
            better = sum(1 for m in means.values() if m > means[setting])
            print(
                f"  {what}: {setting}: vector {f1['vector']:.3f}, hybrid {f1['hybrid']:.3f}, mean "
                f"{means[setting]:.3f} ({better} of {len(table)} settings better, the best "
                f"{max(means.values()):.3f})"
            )


def print_cutoffs(runs: list[SeedRun]) -> None:
    print(
        f"\nReturned set of a search with limit {SET_LIMIT}: precision / recall / F1, mean over queries "
        f"(recall of min(|relevant|, {SET_LIMIT}); an empty set has precision 0)"
    )
    header = ["mode", "cut-off", "seed"] + [f"{k} P / R / F1" for k in KINDS]
    rows = [
        [mode, name, run.name] + [fmt(mean_by_kind(run.kinds(), run.sets[(mode, name)])[k]) for k in KINDS]
        for mode, name in runs[0].sets
        for run in runs
    ]
    print(format_table(header, rows))
    for run in runs:
        agree = ", ".join(f"{k} {n}" for k, n in run.replay_agrees.items() if not k.startswith("recommend"))
        print(f"seed {run.name}: queries (of {len(run.queries)}) whose replayed set equals SQL's: {agree}")
    if any(name.endswith("(replay)") for _, name in runs[0].sets):
        print(
            "largest over all drops (before): rule largest without the floor, the largest drop of the whole "
            "list, its best setting on the tuning seed (replayed; search/sql.py no longer has it)"
        )


def print_phrasings(held: SeedRun, standard: str) -> None:
    """The held-out seed's visual queries in each phrasing, under the cut-offs chosen on the tuning seed's
    standard phrasing (all kinds of query)."""
    visual = [i for i, kind in enumerate(held.kinds()) if kind == "visual"]
    by_phrasing: dict[str, Sets] = {standard: {k: [v[i] for i in visual] for k, v in held.sets.items()}}
    by_phrasing.update(held.phrased)
    print(
        f"\nHeld-out phrasings: the visual queries of seed {held.name} worded differently ({len(visual)} "
        f"each, named by the blue triangle's), limit {SET_LIMIT}: precision / recall / F1, mean over "
        f"queries. The fixed min_score and the cut-off settings are those chosen on the tuning seed, whose "
        f'visual queries are worded "{standard}"'
    )
    header = ["mode", "cut-off"] + [f'"{p}" P / R / F1' for p in by_phrasing] + ["others, mean F1"]
    rows = []
    for mode, name in held.sets:
        others = [float(np.mean([s[2] for s in held.phrased[p][(mode, name)]])) for p in held.phrased]
        rows.append(
            [mode, name]
            + [fmt(np.mean(sets[(mode, name)], axis=0).tolist()) for sets in by_phrasing.values()]
            + [f"{np.mean(others):.3f}"]
        )
    print(format_table(header, rows))
    print(
        "The min_score each phrasing would have wanted: the best mean F1 of its visual queries on this seed, "
        "in hindsight (the fixed one above was chosen on the tuning seed over all kinds of query)"
    )
    cells = [
        [mode]
        + [f"{held.hindsight[(mode, p)][0]:g} (F1 {held.hindsight[(mode, p)][1]:.3f})" for p in by_phrasing]
        for mode in CUT_MODES
    ]
    print(format_table(["mode"] + [f'"{p}"' for p in by_phrasing], cells))
    n = len(visual) * len(held.phrased)
    agree = ", ".join(f"{k} {v}" for k, v in held.phrased_agrees.items())
    print(f"other phrasings: queries (of {n}) whose replayed set equals SQL's: {agree}")


def print_recommend(runs: list[SeedRun]) -> None:
    print("\nRecommend (limit 10): recall@10 / nDCG@10, mean over recommendations")
    header = ["strategy", "seed"] + [f"{k} R@10 / nDCG@10" for k in REC_KINDS]
    rows = []
    for name in runs[0].recommend:
        for run in runs:
            r = mean_by_kind([x.kind for x in run.recommendations], run.recommend[name])
            rows.append([name, run.name] + [fmt(r[k]) for k in REC_KINDS])
    print(format_table(header, rows))
    for run in runs:
        ndcg = {
            s: mean_by_kind([x.kind for x in run.recommendations], run.recommend[s])["all"][1]
            for s in STRATEGIES
        }
        better = max(STRATEGIES, key=lambda s: ndcg[s])
        figures = ", ".join(f"{s} {ndcg[s]:.3f}" for s in STRATEGIES)
        print(
            f"seed {run.name}: the better strategy by nDCG@10 over all recommendations: {better} ({figures})"
        )
    for run in runs:
        if "recommend best_score" in run.replay_agrees:
            print(
                f"seed {run.name}: recommendations whose replayed best_score top 10 equals SQL's: "
                f"{run.replay_agrees['recommend best_score']}/{len(run.recommendations)} (the replay scores "
                "float32 vectors, SQL halfvec)"
            )
    print(
        "best_score (search/sql.py): an image's best weighted positive similarity when it beats its best "
        "weighted negative one, else minus the square of the best negative (Qdrant's best_score)"
    )
    if BEST_SCORE_BEFORE in runs[0].recommend:
        print(
            "best_score ... (before): best positive minus best negative similarity, as search/sql.py scored "
            "it before; the replays use exact neighbours and float32 vectors"
        )


def print_grid(tuning: SeedRun, held: SeedRun, choice: tuple[float, float, int]) -> None:
    header = ["w_vector", "w_keyword", "candidates", "seed"] + [f"{k} R@10 / nDCG@10" for k in KINDS]

    def rows(run: SeedRun, keys: list[tuple[float, float, int]]) -> list[list[str]]:
        return [
            [f"{wv:g}", f"{wk:g}", str(c), run.name]
            + [fmt(mean_by_kind(run.kinds(), run.grid[(wv, wk, c)])[k]) for k in KINDS]
            for wv, wk, c in keys
        ]

    ef_search = SearchStrategy().ef_search
    print(
        f"\nFusion grid, hybrid (limit 10, ef_search {ef_search}): recall@10 / nDCG@10 on seed {tuning.name}"
    )
    print(format_table(header, rows(tuning, list(tuning.grid))))
    print(
        f"chosen on seed {tuning.name} (best hybrid nDCG@10; ties within 0.001: the live setting, else the "
        f"fewest candidates): weights {choice[0]:g}/{choice[1]:g}, {choice[2]} candidates"
    )
    print(f"\nThe chosen and the live setting on seed {held.name}")
    print(format_table(header, rows(held, sorted(held.grid))))


def fmt(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)
