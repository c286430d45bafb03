"""Zero-shot labels (`auto_tags`): precision and recall on the demo gallery, and what labelling costs.

    .venv/bin/python bench/labels.py [--images 300] [--threads 1] [--no-db]

The test set is the demo gallery (`imagesearch demo seed`: stream GALLERY_SEED, 256 px); thresholds chosen
"on calibration" are chosen on as many pictures of the training stream (seed 0), never on the gallery. An
image's true labels are the colour and shape of each object it shows; its background's colour name
("grey", "white", "black", "beige") is neither right nor wrong (the demo model never learnt the word alone
for a background: a label it gives is not an error, a label it misses is not one it could know). Each
vocabulary is scored with imagesearch.model.labels' rule (a label's cosine standing out of the image's
scores over the vocabulary by `threshold` standard deviations, at most 8 labels), at its file's threshold
and others, beside same-run baselines: the top-1 and top-2 labels, and a raw cosine threshold (the best
on calibration).

Cost: the vocabulary's text vectors computed cold (every prompt through the text tower, the session already
open), read back from the `label_vectors` table (an embedded PostgreSQL; skipped with --no-db), and the
scoring of one image vector, beside the image tower's time per image. About 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from imagesearch.config import DEMO_MODEL_DIR
from imagesearch.demo.gallery import GALLERY_SEED, GALLERY_SIZE
from imagesearch.demo.shapes import ShapeSample, sample
from imagesearch.model.embedder import Embedder
from imagesearch.model.labels import (
    DEFAULT_VOCABULARY,
    DEMO_VOCABULARY,
    MAX_LABELS,
    Vocabulary,
    embed_vocabulary,
    load_vocabulary,
    score_labels,
)
from imagesearch.tables import format_table

CALIBRATION_SEED = 0
Predict = Callable[[np.ndarray], list[str]]


def truth(item: ShapeSample) -> tuple[set[str], set[str]]:
    """(the labels an image should get, the labels that are neither right nor wrong)."""
    labels = {label for figure in item.scene.figures for label in (figure.color, figure.shape)}
    return labels, {item.background} - labels


def evaluate(scores: np.ndarray, items: list[ShapeSample], predict: Predict, labels: tuple[str, ...]) -> dict:
    """Micro precision and recall, and per-label counts."""
    tp, fp, fn = Counter[str](), Counter[str](), Counter[str]()
    for row, item in zip(scores, items, strict=True):
        wanted, ignored = truth(item)
        given = set(predict(row)) - ignored
        for label in given & wanted:
            tp[label] += 1
        for label in given - wanted:
            fp[label] += 1
        for label in wanted - given:
            fn[label] += 1
    hits, given_n, wanted_n = (
        sum(tp.values()),
        sum(tp.values()) + sum(fp.values()),
        sum(tp.values()) + sum(fn.values()),
    )
    precision = hits / given_n if given_n else 1.0
    recall = hits / wanted_n if wanted_n else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "p": precision,
        "r": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "per_image": given_n / len(items),
    }


def standing(labels: tuple[str, ...], threshold: float) -> Predict:
    eye = None

    def predict(row: np.ndarray) -> list[str]:
        nonlocal eye
        if eye is None:
            eye = np.eye(len(row), dtype=np.float32)
        return score_labels(row, eye, labels, threshold=threshold)  # row is already the cosines

    return predict


def raw(labels: tuple[str, ...], threshold: float) -> Predict:
    def predict(row: np.ndarray) -> list[str]:
        order = np.argsort(-row)[:MAX_LABELS]
        return [labels[i] for i in order if row[i] >= threshold]

    return predict


def top(labels: tuple[str, ...], k: int) -> Predict:
    return lambda row: [labels[i] for i in np.argsort(-row)[:k]]


def best(
    grid: np.ndarray,
    make: Callable[[float], Predict],
    scores: np.ndarray,
    items: list[ShapeSample],
    labels: tuple[str, ...],
) -> float:
    """The threshold of `grid` with the best F1 on (scores, items)."""
    return float(max(grid, key=lambda t: evaluate(scores, items, make(float(t)), labels)["f1"]))


def score_all(vectors: np.ndarray, matrix: np.ndarray, labels: tuple[str, ...]) -> None:
    for vector in vectors:
        score_labels(vector, matrix, labels)


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def db_read_ms(embedder: Embedder, vocabulary: Vocabulary, matrix: np.ndarray) -> float:
    """Median time of reading the vocabulary's vectors back from `label_vectors`."""
    from _postgres import migrated_database

    from imagesearch.db import Database, label_vectors

    with tempfile.TemporaryDirectory() as tmp, migrated_database(Path(tmp), "labels_bench") as url:
        db = Database(url, max_size=1)
        try:
            with db.connection() as conn:
                label_vectors.put(
                    conn,
                    model_id=embedder.model_id,
                    vocabulary_sha256=vocabulary.sha256,
                    labels=vocabulary.labels,
                    matrix=matrix,
                )

            def read() -> None:
                with db.connection() as conn:
                    label_vectors.get(conn, model_id=embedder.model_id, vocabulary_sha256=vocabulary.sha256)

            read()  # the pool's first connection
            return median_ms(read, 20)
        finally:
            db.close()


def report_vocabulary(
    name: str,
    vocabulary: Vocabulary,
    scores: np.ndarray,
    items: list[ShapeSample],
    calib_scores: np.ndarray,
    calibration: list[ShapeSample],
) -> dict:
    """Print the vocabulary's table of rules; the result at the file's threshold."""
    labels = vocabulary.labels
    rows = []

    def row(method: str, predict: Predict) -> dict:
        result = evaluate(scores, items, predict, labels)
        numbers = (result["p"], result["r"], result["f1"])
        rows.append([method, *(f"{x:.3f}" for x in numbers), f"{result['per_image']:.2f}"])
        return result

    chosen = row(
        f"standing out >= {vocabulary.threshold} (the file's threshold)",
        standing(labels, vocabulary.threshold),
    )
    grid = np.arange(0.8, 3.01, 0.1)
    tuned = best(grid, lambda t: standing(labels, t), calib_scores, calibration, labels)
    row(f"standing out >= {tuned:.1f} (best F1 on calibration)", standing(labels, tuned))
    for t in (1.0, 1.5, 2.0, 2.5):
        row(f"standing out >= {t}", standing(labels, t))
    cosine = best(np.arange(0.30, 0.80, 0.01), lambda t: raw(labels, t), calib_scores, calibration, labels)
    row(f"baseline: raw cosine >= {cosine:.2f} (best F1 on calibration)", raw(labels, cosine))
    row("baseline: top-1 label", top(labels, 1))
    row("baseline: top-2 labels (knows each picture has two)", top(labels, 2))
    print(f"## {name}: {len(labels)} labels, {sum(map(len, vocabulary.prompts))} prompts\n")
    print(format_table(["rule", "precision", "recall", "F1", "labels/image"], rows))
    print()
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-db", action="store_true", help="do not time the read from label_vectors")
    args = parser.parse_args()

    embedder = Embedder(DEMO_MODEL_DIR, threads=args.threads)
    embedder.warm_up()
    gallery = [sample(i, seed=GALLERY_SEED, size=GALLERY_SIZE) for i in range(args.images)]
    calibration = [sample(i, seed=CALIBRATION_SEED, size=GALLERY_SIZE) for i in range(args.images)]
    started = time.perf_counter()
    gallery_vectors = embedder.embed_images([item.image for item in gallery])
    image_ms = (time.perf_counter() - started) * 1000 / len(gallery)
    calibration_vectors = embedder.embed_images([item.image for item in calibration])

    print(
        f"# Labels on the demo gallery ({args.images} pictures, seed {GALLERY_SEED}; calibration: seed "
        f"{CALIBRATION_SEED}); model {embedder.model_id}, {args.threads} onnxruntime thread(s)\n"
    )
    cost_rows = []
    per_label = None
    for name, path in (
        ("shapes.txt (the demo model's default)", DEMO_VOCABULARY),
        ("default.txt (general)", DEFAULT_VOCABULARY),
    ):
        vocabulary = load_vocabulary(path)
        matrix = embed_vocabulary(embedder, vocabulary)
        chosen = report_vocabulary(
            name,
            vocabulary,
            gallery_vectors @ matrix.T,
            gallery,
            calibration_vectors @ matrix.T,
            calibration,
        )
        if path == DEMO_VOCABULARY:
            per_label = chosen
        labels = vocabulary.labels
        cold_ms = median_ms(partial(embed_vocabulary, embedder, vocabulary), 3)
        timed = gallery_vectors[:100]
        label_ms = median_ms(partial(score_all, timed, matrix, labels), 5) / len(timed)
        db_ms = "-" if args.no_db else f"{db_read_ms(embedder, vocabulary, matrix):.2f}"
        cost_rows.append(
            [name, str(len(labels)), f"{cold_ms:.1f}", db_ms, f"{label_ms:.3f}", f"{image_ms:.2f}"]
        )

    assert per_label is not None
    print("## Per label (shapes.txt at its threshold)\n")
    rows = []
    for label in sorted(set(per_label["tp"]) | set(per_label["fn"]) | set(per_label["fp"])):
        tp, fp, fn = per_label["tp"][label], per_label["fp"][label], per_label["fn"][label]
        precision = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
        recall = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
        rows.append([label, str(tp + fn), str(tp + fp), precision, recall])
    print(format_table(["label", "true", "given", "precision", "recall"], rows))
    print("\n## Cost\n")
    print(
        format_table(
            [
                "vocabulary",
                "labels",
                "cold: text tower (ms)",
                "cached: read from label_vectors (ms)",
                "labelling an image (ms)",
                "image tower (ms/image)",
            ],
            cost_rows,
        )
    )


if __name__ == "__main__":
    main()
