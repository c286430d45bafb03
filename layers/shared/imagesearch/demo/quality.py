"""Retrieval quality on generated shapes: held-out sets, colour+shape queries, precision@k (numpy only).

Used by `imagesearch model train-demo` (to report the trained model) and by the quality tests (on the
committed bundle). Embeddings are L2-normalised rows, so a dot product is the cosine.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imagesearch.demo.shapes import COLORS, SHAPES, ShapeSample, sample, with_article

if TYPE_CHECKING:  # the runtime Embedder, torch wrappers and test fakes all fit; onnxruntime is not loaded
    from imagesearch.model.embedder import EmbeddingModel

Label = tuple[str, str]  # (colour, shape) of the main object
# Training streams use small seeds (0 by default); this one holds pictures no training run has seen.
HELD_OUT_SEED = 1_000_001


@dataclass(frozen=True)
class Retrieval:
    """Per-query results of one retrieval task."""

    precision_at_k: np.ndarray  # fraction of the top k with the query's colour and shape, per query
    first_hit: np.ndarray  # whether the top result has the query's colour and shape, per query
    k: int

    @property
    def precision(self) -> float:
        """Mean precision@k (with >= k relevant images per query this is also recall@k capped at k)."""
        return float(self.precision_at_k.mean())

    @property
    def hit_rate(self) -> float:
        """Fraction of queries whose first result is right."""
        return float(self.first_hit.mean())

    @property
    def worst(self) -> float:
        """The lowest precision@k of any query."""
        return float(self.precision_at_k.min())


@dataclass(frozen=True)
class QualityReport:
    """Retrieval quality of a model on held-out pictures of shapes."""

    text_to_image: Retrieval  # queries "a red circle"
    short_text_to_image: Retrieval  # queries "red circle"
    image_to_image: Retrieval  # every picture against the others
    images: int

    def summary(self) -> str:
        """One line per task, for people."""
        k = self.text_to_image.k
        rows = [
            ("text -> image, 'a red circle'", self.text_to_image),
            ("text -> image, 'red circle'", self.short_text_to_image),
            ("image -> image", self.image_to_image),
        ]
        lines = [f"quality on {self.images} held-out pictures (relevant = same colour and shape):"]
        for name, result in rows:
            lines.append(
                f"  {name}: precision@{k} {result.precision:.3f} (worst query {result.worst:.2f}), "
                f"first result right {result.hit_rate:.3f}"
            )
        return "\n".join(lines)


def evaluate(
    model: EmbeddingModel, *, per_label: int = 12, seed: int = HELD_OUT_SEED, size: int = 64, k: int = 5
) -> QualityReport:
    """Precision@k of text -> image and image -> image retrieval on a balanced held-out set."""
    pictures = balanced_samples(per_label, seed=seed, size=size)
    image_labels = [(item.color, item.shape) for item in pictures]
    images = model.embed_images([item.image for item in pictures])
    results = []
    for template in ("{article} {color} {shape}", "{color} {shape}"):
        queries = label_queries(template)
        texts = model.embed_texts([text for text, _ in queries])
        results.append(text_to_image(texts, [label for _, label in queries], images, image_labels, k=k))
    return QualityReport(
        text_to_image=results[0],
        short_text_to_image=results[1],
        image_to_image=image_to_image(images, image_labels, k=k),
        images=len(pictures),
    )


def labels() -> list[Label]:
    """Every (colour, shape) pair, in a fixed order."""
    return [(color, shape) for shape in SHAPES for color in COLORS]


def label_queries(template: str = "{article} {color} {shape}") -> list[tuple[str, Label]]:
    """One text query per (colour, shape): "a red circle", "an orange star", ..."""
    queries = []
    for color, shape in labels():
        article = with_article(color).split(" ", 1)[0]
        queries.append((template.format(article=article, color=color, shape=shape), (color, shape)))
    return queries


def balanced_samples(per_label: int, *, seed: int, size: int = 64) -> list[ShapeSample]:
    """The first samples of stream `seed` that give exactly `per_label` images of every (colour, shape)."""
    counts: Counter[Label] = Counter()
    chosen: list[ShapeSample] = []
    wanted = per_label * len(COLORS) * len(SHAPES)
    for index in itertools.count():
        item = sample(index, seed=seed, size=size)
        label = (item.color, item.shape)
        if counts[label] < per_label:
            counts[label] += 1
            chosen.append(item)
            if len(chosen) == wanted:
                return chosen
    raise AssertionError("unreachable: the stream is infinite")


def text_to_image(
    text_embeddings: np.ndarray,
    query_labels: list[Label],
    image_embeddings: np.ndarray,
    image_labels: list[Label],
    *,
    k: int = 5,
) -> Retrieval:
    """Rank all images for each text query; relevant = same colour and shape as the query."""
    ranked = top_k(text_embeddings @ image_embeddings.T, k)
    relevant = _relevance(query_labels, image_labels)
    return _retrieval(np.take_along_axis(relevant, ranked, axis=1), k)


def image_to_image(image_embeddings: np.ndarray, image_labels: list[Label], *, k: int = 5) -> Retrieval:
    """Each image as a query against all the others; relevant = same colour and shape."""
    scores = image_embeddings @ image_embeddings.T
    np.fill_diagonal(scores, -np.inf)  # an image is not its own neighbour
    ranked = top_k(scores, k)
    relevant = _relevance(image_labels, image_labels)
    return _retrieval(np.take_along_axis(relevant, ranked, axis=1), k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k highest scores per row, best first (ties: lower index first)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :k]


def _relevance(query_labels: list[Label], image_labels: list[Label]) -> np.ndarray:
    images = np.array([f"{c}|{s}" for c, s in image_labels])
    queries = np.array([f"{c}|{s}" for c, s in query_labels])
    return queries[:, None] == images[None, :]


def _retrieval(hits: np.ndarray, k: int) -> Retrieval:
    return Retrieval(precision_at_k=hits.mean(axis=1), first_hit=hits[:, 0], k=k)
