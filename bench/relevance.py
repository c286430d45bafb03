"""Search relevance by mode: recall@10 and nDCG@10 of vector, keyword and hybrid search, and the fusion grid.

    .venv/bin/python bench/relevance.py [--count 3000] [--model-dir DIR] [--grid]

A generated gallery (coloured shapes, imagesearch.demo.shapes) is embedded with the model (the committed
demo model by default) and loaded with COPY into an embedded PostgreSQL, with metadata as people write it:
every title names a place and a year ("Lisbon, 2019"), tags name an album, and only a third of the images
carry a description (the generator's caption). Three kinds of queries, each with ground truth:
  visual        "a blue triangle"            relevant: that shape in that colour, wherever it was taken
  keyword-only  "Lisbon"                     relevant: taken there (only the title says so)
  both          "a blue triangle in Lisbon"  relevant: that shape and colour, taken there
Relevance is binary; recall@10 = |relevant in top 10| / min(10, |relevant|), nDCG@10 with binary gains. The
queries run through SearchService (the same SQL as POST /search). With --grid, hybrid is also measured over
fusion weights and candidate counts; the defaults in config.py come from that table.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from _corpus import copy_gallery, vacuum
from _postgres import migrated_database
from pgvector.psycopg import register_vector
from PIL import Image

from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import DEMO_MODEL_DIR, SearchStrategy, load_settings
from imagesearch.db import model_records
from imagesearch.demo.shapes import caption_variants, generate
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import Runtime
from imagesearch.search.plan import plan_search
from imagesearch.search.service import SearchService
from imagesearch.tables import format_table

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


@dataclass(frozen=True)
class Item:
    id: uuid.UUID
    label: tuple[str, str]  # (colour, shape) of the main figure
    place: str


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    relevant: frozenset[uuid.UUID]


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
    by_label: dict[tuple[str, str], set[uuid.UUID]] = {}
    by_place: dict[str, set[uuid.UUID]] = {}
    by_both: dict[tuple[str, str, str], set[uuid.UUID]] = {}
    for item in items:
        by_label.setdefault(item.label, set()).add(item.id)
        by_place.setdefault(item.place, set()).add(item.id)
        by_both.setdefault((*item.label, item.place), set()).add(item.id)
    queries = [
        Query("visual", f"a {color} {shape}", frozenset(ids))
        for (color, shape), ids in sorted(by_label.items())
    ]
    queries += [Query("keyword-only", place, frozenset(ids)) for place, ids in sorted(by_place.items())]
    combos = sorted(by_both.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:40]
    queries += [Query("both", f"a {c} {s} in {p}", frozenset(ids)) for (c, s, p), ids in combos]
    return queries


def recall_ndcg(found: list[uuid.UUID], relevant: frozenset[uuid.UUID], k: int = 10) -> tuple[float, float]:
    gains = [1.0 if f in relevant else 0.0 for f in found[:k]]
    ideal = min(k, len(relevant))
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1 / math.log2(i + 2) for i in range(ideal))
    return sum(gains) / ideal, dcg / idcg


def evaluate(
    service: SearchService, queries: list[Query], mode: str, strategy: SearchStrategy
) -> dict[str, tuple[float, float]]:
    service.strategy = strategy
    scores: dict[str, list[tuple[float, float]]] = {}
    for query in queries:
        plan = plan_search(query=query.text, image_id=None, mode=mode, limit=10)  # type: ignore[arg-type]
        found = [hit.id for hit in service.run(DEFAULT_TENANT, plan, strategy)][:10]
        scores.setdefault(query.kind, []).append(recall_ndcg(found, query.relevant))
        scores.setdefault("all", []).append(scores[query.kind][-1])
    return {
        kind: (float(np.mean([s[0] for s in v])), float(np.mean([s[1] for s in v])))
        for kind, v in scores.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--model-dir", type=Path, default=DEMO_MODEL_DIR)
    parser.add_argument("--grid", action="store_true", help="also sweep fusion weights and candidate counts")
    args = parser.parse_args()

    model = Embedder(args.model_dir)
    started = time.perf_counter()
    items, rows, images = build_gallery(args.count, args.seed)
    vectors = model.embed_images(images, batch_size=64)
    log(
        f"gallery of {len(items)} generated and embedded in {time.perf_counter() - started:.1f} s "
        f"({model.model_id})"
    )
    queries = build_queries(items)

    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "relevance") as url:
        load(url, model, rows, vectors)
        runtime = Runtime(
            load_settings(database_url=url, storage_url=f"file://{tmp}/o"), configured_model=model
        )
        service = runtime.search
        live = SearchStrategy()
        results = {mode: evaluate(service, queries, mode, live) for mode in ("vector", "keyword", "hybrid")}
        grid = (
            {
                (wv, wk, c): evaluate(
                    service,
                    queries,
                    "hybrid",
                    SearchStrategy(weight_vector=wv, weight_keyword=wk, candidates=c, ef_search=c),
                )
                for wv, wk, c in GRID
            }
            if args.grid
            else {}
        )
        runtime.close()

    kinds = ["visual", "keyword-only", "both", "all"]
    counts = {k: sum(1 for q in queries if q.kind == k) for k in kinds[:-1]} | {"all": len(queries)}
    described = ", ".join(f"{k} {n}" for k, n in counts.items())
    print(
        f"\n{len(items)} images, {len(queries)} queries ({described}); "
        f"live strategy: weights {live.weight_vector}/{live.weight_keyword}, {live.candidates} candidates\n"
    )
    header = ["mode"] + [f"{k} R@10 / nDCG@10" for k in kinds]
    print(format_table(header, [[mode] + [fmt(r[k]) for k in kinds] for mode, r in results.items()]))
    best_single = max(results["vector"]["all"][1], results["keyword"]["all"][1])
    print(f"\nhybrid nDCG@10 vs the better single mode: {results['hybrid']['all'][1] / best_single:.2f}x")
    if grid:
        print()
        rows_out = [
            [f"{wv:g}", f"{wk:g}", str(c)] + [fmt(r[k]) for k in kinds] for (wv, wk, c), r in grid.items()
        ]
        print(format_table(["w_vector", "w_keyword", "candidates"] + header[1:], rows_out))
    return 0


def load(url: str, model: Embedder, rows: list[tuple[object, ...]], vectors: np.ndarray) -> None:
    with psycopg.connect(url) as conn:
        register_vector(conn)
        model_records.register_model(conn, model_id=model.model_id, dim=model.dim)
        columns = ["id", "tenant_id", "storage_key", "title", "description", "tags", "status", "filename"]
        copy_gallery(conn, columns, rows, vectors, model_id=model.model_id)
        vacuum(conn)


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f} / {pair[1]:.3f}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
