"""Search relevance, tuned on one gallery and reported on another: modes, cut-offs, phrasings, recommend.

    .venv/bin/python bench/relevance.py [--count 3000] [--tune-seed 2024] [--held-out-seed 2025]
                                        [--model-dir DIR] [--grid] [--variants]

Two generated galleries (coloured shapes, imagesearch.demo.shapes), one per seed, are embedded with the
model (the committed demo model by default) and loaded with COPY into an embedded PostgreSQL each, with
metadata as people write it: every title names a place and a year ("Lisbon, 2019"), tags name an album,
and only a third of the images carry a description (the generator's caption). Queries, with ground truth:
  visual        "a blue triangle"            relevant: that shape in that colour, wherever it was taken
  keyword-only  "Lisbon"                     relevant: taken there (only the title says so)
  both          "a blue triangle in Lisbon"  relevant: that shape and colour, taken there
and recommendations (POST /recommend; relevant: the other images of the positive label(s)):
  images        3 pictures of a label; negative: 2 of a confusable label (same shape or same colour)
  text+image    the label's words and 1 picture of it; negative: 1 picture of a confusable label
  two labels    2 pictures each of two colours of a shape; negative: 1 picture of a third colour
Everything runs through SearchService (the API's SQL). Settings are chosen on the tuning seed (2024) and
reported on the held-out seed (2025), which plays no part in choosing them; the tuning seed's figures are
printed beside the held-out ones. The tables:
- search by mode (limit 10, live strategy): recall@10 = |relevant in top 10| / min(10, |relevant|), nDCG@10;
- cut-off tuning (tuning seed): mean F1 of the returned set (below) of every fixed min_score (0 to 1 by
  0.005) and of every cutoff_rule x cutoff_gap x cutoff_min_results of cutoff auto, replayed in Python on
  each query's candidates (_relevance_eval.py; one setting for both modes: the best mean of their F1s);
  the chosen setting and the live defaults' (SearchStrategy()) with their F1s;
- cut-offs: the returned set of a search with limit 100 (the API's maximum, so that the cut-off and not the
  limit sizes it): precision, recall (of min(|relevant|, 100): a place has ~150 pictures) and F1, means
  over queries, of vector and hybrid under cutoff none, the mode's fixed min_score and cutoff auto (the
  chosen setting, and the live defaults when they differ), each run through SQL on both seeds, with the
  number of queries whose replay returned the same set as SQL (all of them, when the replay is right);
- held-out phrasings (held-out seed): the visual queries worded otherwise ("blue triangle", "a triangle
  that is blue", "a photo of a blue triangle"; relevant: the same label) under the same cut-offs, chosen
  on the standard wording: whether a fixed min_score chosen on one phrasing transfers to another; with
  the min_score each phrasing would have wanted, in hindsight;
- recommend (limit 10): recall@10 / nDCG@10 of the strategies average and best_score;
- --grid: hybrid over fusion weights and candidate counts (ef_search the live 200 throughout) on the tuning
  seed, then the best and the live setting on the held-out seed;
- --variants: the rules the product had before, replayed, beside what it runs now: cut-off rule "largest"
  over all drops (without the mean-score floor; its own best setting on the tuning seed), and best_score
  as best positive minus best negative similarity. Also replays best_score as search/sql.py scores it
  (exact neighbours, float32) and says how many top 10s equal SQL's.
80 to 120 s on 2 cores, with or without --grid and --variants (they add about 15 s), a third of it
embedding. Deterministic (two runs print the same tables); progress and the service's log lines go to
stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import psycopg
from _corpus import copy_gallery, vacuum
from _postgres import migrated_database
from _relevance_eval import (
    BEST_SCORE_BEFORE,
    CUT_MODES,
    KINDS,
    MODES,
    REC_KINDS,
    SET_LIMIT,
    STRATEGIES,
    Cutoffs,
    CutSetting,
    Query,
    Recommendation,
    Row,
    Rule,
    SeedRun,
    Sets,
    best_score_ranking,
    cut_rows,
    cutoff_table,
    mean_by_kind,
    middle_of_best,
    pick_cutoff,
    print_cutoffs,
    print_grid,
    print_modes,
    print_phrasings,
    print_recommend,
    print_tuning,
    recall_ndcg,
    returned,
    set_scores,
    threshold_curve,
)
from pgvector.psycopg import register_vector
from PIL import Image

from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import DEMO_MODEL_DIR, SearchStrategy, load_settings
from imagesearch.db import model_records
from imagesearch.demo.shapes import caption_variants, generate, with_article
from imagesearch.logs import logger
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import Runtime
from imagesearch.search.plan import plan_search
from imagesearch.search.recommend import recommend_plan
from imagesearch.search.schemas import Example, RecommendOptions, RecommendStrategy, SearchMode
from imagesearch.search.service import SearchService

PLACES = [
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Quito",
    "Tromso",
    "Valletta",
    "Hanoi",
    "Reykjavik",
    "Cusco",
    "Tbilisi",
    "Zanzibar",
    "Bergen",
    "Marrakesh",
    "Ushuaia",
    "Kyoto",
    "Tallinn",
    "Oaxaca",
    "Hobart",
    "Leeds",
    "Goa",
]
ALBUMS = ["family", "work", "travel", "garden", "school", "holiday", "archive", "friends"]
GRID = [
    (wv, wk, c)
    for c in (50, 100, 200)
    for wv, wk in ((1.0, 1.0), (1.0, 0.5), (1.0, 1.25), (1.0, 1.5), (1.0, 2.0), (2.0, 1.0))
]
CANDIDATES_LIMIT = 1000  # every candidate of both branches (2 x 200 at most)
THRESHOLDS = [round(0.005 * i, 3) for i in range(201)]  # fixed min_score: 0 to 1
GAPS = [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0]  # cutoff_gap
MINS = [1, 2, 3, 5, 10, 20]  # cutoff_min_results
RULES: tuple[Rule, ...] = ("first", "largest")  # cutoff_rule
# The visual queries' phrasing, the standard one (the tuning seed's) first; the others only on the held-out
# seed, to see whether a min_score chosen on one phrasing transfers. Each is named by its "blue triangle".
# "blue triangle" and "a triangle that is blue" are phrasings of the model's training captions, "a photo
# of ..." is not (and its word "photo" is in no description, so hybrid's all-words keyword match fails).
STANDARD_PHRASING = "a blue triangle"
PHRASINGS: dict[str, Callable[[str, str], str]] = {
    STANDARD_PHRASING: lambda color, shape: f"a {color} {shape}",
    "blue triangle": lambda color, shape: f"{color} {shape}",
    "a triangle that is blue": lambda color, shape: f"{with_article(shape)} that is {color}",
    "a photo of a blue triangle": lambda color, shape: f"a photo of {with_article(f'{color} {shape}')}",
}
LIVE = SearchStrategy()
EMBED_CHUNK = 512  # images per progress line: whole batches of 64 (the int8 model quantises per batch)


@dataclass(frozen=True)
class Item:
    id: uuid.UUID
    label: tuple[str, str]  # (colour, shape) of the main figure
    place: str


def build_gallery(count: int, seed: int) -> tuple[list[Item], list[tuple[object, ...]], list[Image.Image]]:
    rng = np.random.default_rng(seed)
    samples = generate(count, seed=seed, size=96)
    items: list[Item] = []
    rows: list[tuple[object, ...]] = []
    images: list[Image.Image] = []
    for i, sample in enumerate(samples):
        figure = sample.scene.main
        place = PLACES[int(rng.integers(len(PLACES)))]
        item = Item(uuid.UUID(int=(seed << 64) | i), (figure.color, figure.shape), place)
        description = caption_variants(sample)[0] if rng.random() < 1 / 3 else None
        title = f"{place}, {int(rng.integers(2005, 2026))}"
        tags = [ALBUMS[int(rng.integers(len(ALBUMS)))]]
        items.append(item)
        rows.append(
            (
                item.id,
                DEFAULT_TENANT.id,
                f"originals/{DEFAULT_TENANT.id}/{item.id}",
                title,
                description,
                tags,
                "ready",
                f"IMG_{i:05d}.png",
            )
        )
        images.append(sample.image)
    return items, rows, images


def build_queries(items: list[Item]) -> list[Query]:
    by_place: dict[str, set[uuid.UUID]] = {}
    by_both: dict[tuple[str, str, str], set[uuid.UUID]] = {}
    for item in items:
        by_place.setdefault(item.place, set()).add(item.id)
        by_both.setdefault((*item.label, item.place), set()).add(item.id)
    queries = visual_queries(items, STANDARD_PHRASING)
    queries += [Query("keyword-only", place, frozenset(ids)) for place, ids in sorted(by_place.items())]
    combos = sorted(by_both.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:40]
    queries += [Query("both", f"a {c} {s} in {p}", frozenset(ids)) for (c, s, p), ids in combos]
    return queries


def visual_queries(items: list[Item], phrasing: str) -> list[Query]:
    """A query for each label, worded as `phrasing` (a key of PHRASINGS); relevant: that label's images."""
    by_label: dict[tuple[str, str], set[uuid.UUID]] = {}
    for item in items:
        by_label.setdefault(item.label, set()).add(item.id)
    words = PHRASINGS[phrasing]
    return [
        Query("visual", words(color, shape), frozenset(ids))
        for (color, shape), ids in sorted(by_label.items())
    ]


def build_recommendations(items: list[Item], seed: int) -> list[Recommendation]:
    """For each label: its images as positives against a confusable label's (the next colour of the
    shape for even labels, the next shape of the colour for odd ones); examples picked at random."""
    rng = np.random.default_rng([seed, 1])
    by_label: dict[tuple[str, str], list[uuid.UUID]] = {}
    for item in items:
        by_label.setdefault(item.label, []).append(item.id)
    colors = sorted({c for c, _ in by_label})
    shapes = sorted({s for _, s in by_label})

    def pick(label: tuple[str, str], n: int) -> list[uuid.UUID]:
        return [by_label[label][int(i)] for i in rng.choice(len(by_label[label]), n, replace=False)]

    def images(ids: list[uuid.UUID]) -> tuple[Example, ...]:
        return tuple(Example(image_id=i) for i in ids)

    def enough(*wanted: tuple[tuple[str, str], int]) -> bool:
        return all(len(by_label.get(label, ())) >= n for label, n in wanted)

    out: list[Recommendation] = []
    for i, (color, shape) in enumerate(sorted(by_label)):
        label = (color, shape)
        next_color = (colors[(colors.index(color) + 1) % len(colors)], shape)
        third_color = (colors[(colors.index(color) + 2) % len(colors)], shape)
        next_shape = (color, shapes[(shapes.index(shape) + 1) % len(shapes)])
        confusable = next_color if i % 2 == 0 else next_shape
        if enough((label, 4), (confusable, 2)):
            positive, negative = pick(label, 3), pick(confusable, 2)
            relevant = frozenset(by_label[label]) - set(positive)
            out.append(Recommendation("images", images(positive), images(negative), relevant))
            positive, negative = pick(label, 1), pick(confusable, 1)
            words = (Example(text=f"a {color} {shape}"),)
            relevant = frozenset(by_label[label]) - set(positive)
            out.append(Recommendation("text+image", words + images(positive), images(negative), relevant))
        if enough((label, 3), (next_color, 3), (third_color, 1)) and len(colors) > 2:
            positive, negative = pick(label, 2) + pick(next_color, 2), pick(third_color, 1)
            relevant = frozenset(by_label[label] + by_label[next_color]) - set(positive)
            out.append(Recommendation("two labels", images(positive), images(negative), relevant))
    return sorted(out, key=lambda r: REC_KINDS.index(r.kind))


# --- measuring one seed ------------------------------------------------------------------------------------
def run_seed(
    seed: int,
    args: argparse.Namespace,
    model: Embedder,
    cutoffs: Cutoffs | None,
    grid: Sequence[tuple[float, float, int]],
) -> SeedRun:
    """Generate, embed and load the seed's gallery, and measure it: `cutoffs` None means choose them here
    (the tuning seed); `grid`, the fusion settings to measure."""
    started = time.perf_counter()
    items, rows, images = build_gallery(args.count, seed)
    vectors = np.concatenate(
        [embed_chunk(model, images, start, seed, started) for start in range(0, len(images), EMBED_CHUNK)]
    )
    role = "tuning" if cutoffs is None else "held-out"
    run = SeedRun(seed, role, build_queries(items), build_recommendations(items, seed))
    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "relevance") as url:
        load(url, model, rows, vectors)
        runtime = Runtime(
            load_settings(database_url=url, storage_url=f"file://{tmp}/o"), configured_model=model
        )
        service = runtime.search
        service.strategy = LIVE
        step = Steps(seed)
        try:
            run.modes = {mode: ranking(service, run.queries, mode, LIVE) for mode in MODES}
            step.done("three modes, top 10")
            run.candidates = {mode: candidates(service, run.queries, mode) for mode in CUT_MODES}
            step.done("every candidate of vector and hybrid")
            if cutoffs is None:
                cutoffs = tune_cutoffs(run, args.variants)
                step.done("cut-offs tuned on the replay")
            run.cutoffs = cutoffs
            run.sets, run.replay_agrees = measure_sets(service, run.queries, run.candidates, cutoffs)
            step.done("cut-offs through SQL (limit 100)")
            if run.role == "held-out":
                visual = [i for i, q in enumerate(run.queries) if q.kind == "visual"]
                standard = {mode: [run.candidates[mode][i] for i in visual] for mode in CUT_MODES}
                hindsight(run, STANDARD_PHRASING, [run.queries[i] for i in visual], standard)
                for phrasing in list(PHRASINGS)[1:]:
                    measure_phrasing(service, run, phrasing, visual_queries(items, phrasing), cutoffs)
                step.done(f"cut-offs of {len(PHRASINGS) - 1} other phrasings of the visual queries")
            gallery = (vectors, [item.id for item in items]) if args.variants else None
            measure_recommend(service, run, gallery)
            step.done("recommend")
            for wv, wk, c in grid:
                # ef_search stays the live one (200): at ef_search 50 the index's answers for queries far
                # from every picture ("Lisbon") vary from run to run, as the HNSW graph does (pgvector draws
                # its levels from a randomly seeded generator).
                strategy = LIVE.model_copy(
                    update={"weight_vector": wv, "weight_keyword": wk, "candidates": c}
                )
                run.grid[(wv, wk, c)] = ranking(service, run.queries, "hybrid", strategy)
            if grid:
                step.done(f"fusion grid, {len(grid)} settings")
        finally:
            runtime.close()
    return run


def embed_chunk(
    model: Embedder, images: list[Image.Image], start: int, seed: int, started: float
) -> np.ndarray:
    vectors = model.embed_images(images[start : start + EMBED_CHUNK], batch_size=64)
    done = min(start + EMBED_CHUNK, len(images))
    elapsed = time.perf_counter() - started
    log(f"seed {seed}: {done}/{len(images)} images generated and embedded ({elapsed:.0f} s)")
    return vectors


class Steps:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.started = time.perf_counter()

    def done(self, what: str) -> None:
        log(f"seed {self.seed}: {what} ({time.perf_counter() - self.started:.1f} s)")
        self.started = time.perf_counter()


def ranking(
    service: SearchService, queries: list[Query], mode: SearchMode, strategy: SearchStrategy
) -> list[tuple[float, float]]:
    """recall@10 and nDCG@10 of each query."""
    scores = []
    for query in queries:
        plan = plan_search(query=query.text, image_id=None, mode=mode, limit=10)
        found = [hit.id for hit in service.run(DEFAULT_TENANT, plan, strategy)][:10]
        scores.append(recall_ndcg(found, query.relevant))
    return scores


def candidates(service: SearchService, queries: list[Query], mode: SearchMode) -> list[list[Row]]:
    """Every candidate of each query with its score and branch scores (no cut-off, no threshold)."""
    out = []
    for query in queries:
        plan = plan_search(query=query.text, image_id=None, mode=mode, limit=CANDIDATES_LIMIT, explain=True)
        rows = []
        for hit in service.run(DEFAULT_TENANT, plan, LIVE):
            distance = hit.row["vector_distance"]
            rows.append(
                Row(hit.id, hit.score, None if distance is None else 1 - distance, hit.row["keyword_score"])
            )
        out.append(rows)
    return out


def tune_cutoffs(run: SeedRun, variants: bool) -> Cutoffs:
    """The fixed min_score of each mode and auto's (cutoff_rule, cutoff_gap, cutoff_min_results) with the
    best mean F1 of the returned sets (auto: averaged over vector and hybrid), replayed on the candidates;
    with `variants`, also the best setting of rule "largest" over all drops (the rule before)."""
    relevant = [q.relevant for q in run.queries]
    min_score: dict[str, float] = {}
    for mode in CUT_MODES:
        min_score[mode] = middle_of_best(
            threshold_curve(run.candidates[mode], relevant, SET_LIMIT, THRESHOLDS)
        )
    settings = [CutSetting(rule, g, m) for rule in RULES for m in MINS for g in GAPS]
    run.tuning["auto"] = cutoff_table(run.candidates, relevant, SET_LIMIT, settings)
    before = None
    if variants:
        settings = [CutSetting("largest", g, m, all_drops=True) for m in MINS for g in GAPS]
        run.tuning["before"] = cutoff_table(run.candidates, relevant, SET_LIMIT, settings)
        before = pick_cutoff(run.tuning["before"])
    return Cutoffs(min_score, pick_cutoff(run.tuning["auto"]), before)


def measure_sets(
    service: SearchService, queries: list[Query], candidates: dict[str, list[list[Row]]], cutoffs: Cutoffs
) -> tuple[Sets, dict[str, int]]:
    """The returned sets (limit 100) of `queries` under cutoff none, the fixed min_score and cutoff auto (the
    chosen setting, and the live defaults) through SQL, with how many queries' replay on `candidates`
    returned the same set; rule "largest" over all drops (--variants) by replay alone."""
    live = CutSetting(LIVE.cutoff_rule, LIVE.cutoff_gap, LIVE.cutoff_min_results)
    sets: Sets = {}
    agrees: dict[str, int] = {}
    for mode in CUT_MODES:
        hybrid = mode == "hybrid"
        ways: list[tuple[str, str, float | None, CutSetting | None]] = [
            ("none", "none", None, None),
            ("fixed", f"fixed min_score {cutoffs.min_score[mode]:g}", cutoffs.min_score[mode], None),
        ]
        if live == cutoffs.auto:
            ways.append(("auto", f"auto, chosen = live defaults ({live})", None, live))
        else:
            ways.append(("auto", f"auto, chosen ({cutoffs.auto})", None, cutoffs.auto))
            ways.append(("auto live", f"auto, live defaults ({live})", None, live))
        for key, name, min_score, setting in ways:
            strategy = LIVE
            if setting is not None:
                strategy = LIVE.model_copy(
                    update={
                        "cutoff_rule": setting.rule,
                        "cutoff_gap": setting.gap,
                        "cutoff_min_results": setting.min_results,
                    }
                )
            scores, agree = [], 0
            for query, rows in zip(queries, candidates[mode], strict=True):
                plan = plan_search(
                    query=query.text,
                    image_id=None,
                    mode=mode,
                    limit=SET_LIMIT,
                    min_score=min_score,
                    cutoff="none" if setting is None else "auto",
                )
                found = [hit.id for hit in service.run(DEFAULT_TENANT, plan, strategy)][:SET_LIMIT]
                kept = rows if setting is None else cut_rows(rows, setting, hybrid=hybrid)
                agree += found == returned(kept, SET_LIMIT, min_score)
                scores.append(set_scores(found, query.relevant, SET_LIMIT))
            sets[(mode, name)] = scores
            agrees[f"{mode} {key}"] = agree
        if cutoffs.before is not None:
            sets[(mode, f"auto, {cutoffs.before} (replay)")] = [
                set_scores(
                    returned(cut_rows(rows, cutoffs.before, hybrid=hybrid), SET_LIMIT), q.relevant, SET_LIMIT
                )
                for q, rows in zip(queries, candidates[mode], strict=True)
            ]
    return sets, agrees


def measure_phrasing(
    service: SearchService, run: SeedRun, phrasing: str, queries: list[Query], cutoffs: Cutoffs
) -> None:
    """The cut-offs of the visual queries worded as `phrasing`, with the settings chosen on the standard
    wording of the tuning seed; and the min_score that would have been best for this wording (hindsight)."""
    found = {mode: candidates(service, queries, mode) for mode in CUT_MODES}
    run.phrased[phrasing], agrees = measure_sets(service, queries, found, cutoffs)
    for key, n in agrees.items():
        run.phrased_agrees[key] = run.phrased_agrees.get(key, 0) + n
    hindsight(run, phrasing, queries, found)


def hindsight(
    run: SeedRun, phrasing: str, queries: list[Query], found: dict[SearchMode, list[list[Row]]]
) -> None:
    """The fixed min_score with the best mean F1 of `queries` (replayed on their candidates `found`), and
    that F1: what a threshold chosen on these very queries would give."""
    relevant = [q.relevant for q in queries]
    for mode in CUT_MODES:
        curve = threshold_curve(found[mode], relevant, SET_LIMIT, THRESHOLDS)
        best = middle_of_best(curve)
        run.hindsight[(mode, phrasing)] = (best, dict(curve)[best])


def measure_recommend(
    service: SearchService, run: SeedRun, gallery: tuple[np.ndarray, list[uuid.UUID]] | None
) -> None:
    """recall@10 / nDCG@10 of each strategy through SQL; with `gallery` (--variants), best_score also
    replayed in numpy, as the statement scores and as it scored before, and whether the first replay
    returned SQL's top 10."""
    replays: dict[str, Literal["difference", "qdrant"]] = {
        "best_score (replay)": "qdrant",
        BEST_SCORE_BEFORE: "difference",
    }
    for strategy in STRATEGIES:
        run.recommend[strategy] = []
        agree = 0
        for rec in run.recommendations:
            plan = recommend_plan(service, DEFAULT_TENANT, recommend_options(rec, strategy))
            found = [hit.id for hit in service.run(DEFAULT_TENANT, plan, service.strategy)][:10]
            run.recommend[strategy].append(recall_ndcg(found, rec.relevant))
            if gallery is None or plan.examples is None:
                continue
            for name, score in replays.items():
                ranked = best_score_ranking(
                    *gallery, plan.examples, plan.exclude, candidates=LIVE.candidates, limit=10, score=score
                )
                run.recommend.setdefault(name, []).append(recall_ndcg(ranked, rec.relevant))
                agree += score == "qdrant" and ranked == found
        if strategy == "best_score" and gallery is not None:
            run.replay_agrees["recommend best_score"] = agree


def recommend_options(rec: Recommendation, strategy: RecommendStrategy) -> RecommendOptions:
    return RecommendOptions(
        positive=list(rec.positive), negative=list(rec.negative), strategy=strategy, limit=10
    )


def live_setting() -> tuple[float, float, int]:
    return (LIVE.weight_vector, LIVE.weight_keyword, LIVE.candidates)


def pick_grid(tuning: SeedRun) -> tuple[float, float, int]:
    """The setting with the best hybrid nDCG@10 on the tuning seed; ties within 0.001: the live one if tied,
    else the fewest candidates."""
    scores = {key: mean_by_kind(tuning.kinds(), v)["all"][1] for key, v in tuning.grid.items()}
    best = max(scores.values())
    tied = [key for key, s in scores.items() if s >= best - 0.001]
    return live_setting() if live_setting() in tied else min(tied, key=lambda k: (k[2], abs(k[0] - k[1])))


# --- the report --------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="images per gallery")
    parser.add_argument(
        "--tune-seed", "--seed", type=int, default=2024, help="the gallery settings are chosen on"
    )
    parser.add_argument("--held-out-seed", type=int, default=2025, help="the gallery figures are reported on")
    parser.add_argument("--model-dir", type=Path, default=DEMO_MODEL_DIR)
    parser.add_argument("--grid", action="store_true", help="also sweep fusion weights and candidate counts")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also replay the cut-off rule and the best_score score as they were before",
    )
    args = parser.parse_args()
    if args.tune_seed == args.held_out_seed:
        parser.error("the held-out seed must differ from the tuning seed")

    started = time.perf_counter()
    handler = logger.registered_handler  # the service's JSON log lines: to stderr, beside the progress
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    model = Embedder(args.model_dir)
    tuning = run_seed(args.tune_seed, args, model, None, GRID if args.grid else [])
    choice = pick_grid(tuning) if args.grid else None
    held = run_seed(
        args.held_out_seed, args, model, tuning.cutoffs, sorted({choice, live_setting()}) if choice else []
    )
    log(f"done in {time.perf_counter() - started:.0f} s")

    runs = [held, tuning]
    counts = {k: sum(1 for q in held.queries if q.kind == k) for k in KINDS[:-1]}
    rec_counts = {k: sum(1 for r in held.recommendations if r.kind == k) for k in REC_KINDS[:-1]}
    print(
        f"\n{args.count} images per gallery ({model.model_id}). Settings are chosen on seed {args.tune_seed} "
        f"(tuning) and reported on seed {args.held_out_seed} (held-out); the tuning seed's figures are "
        f"printed beside them for comparison.\nPer gallery: {describe(counts)} queries; recommendations: "
        f"{describe(rec_counts)}. Live strategy: weights {LIVE.weight_vector:g}/{LIVE.weight_keyword:g}, "
        f"{LIVE.candidates} candidates."
    )
    print_modes(runs)
    print_tuning(tuning, CutSetting(LIVE.cutoff_rule, LIVE.cutoff_gap, LIVE.cutoff_min_results))
    print_cutoffs(runs)
    print_phrasings(held, STANDARD_PHRASING)
    print_recommend(runs)
    if choice:
        print_grid(tuning, held, choice)
    return 0


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counts.items())


def load(url: str, model: Embedder, rows: list[tuple[object, ...]], vectors: np.ndarray) -> None:
    with psycopg.connect(url) as conn:
        register_vector(conn)
        model_records.register_model(conn, model_id=model.model_id, dim=model.dim)
        columns = ["id", "tenant_id", "storage_key", "title", "description", "tags", "status", "filename"]
        copy_gallery(conn, columns, rows, vectors, model_id=model.model_id)
        vacuum(conn)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
