"""Zero-shot labels (`auto_tags`) for images: at ingestion from the active model's fresh vector, and as the
"labels" enrichment step from its stored one.

The labels come from the model search uses (the active one) and a vocabulary (imagesearch.model.labels);
`auto_tags_model` records both, with the threshold, as `<model id>:<digest>`, so a new active model, a new
vocabulary or a new threshold makes every image unread for the step, and `imagesearch enrich` labels
them again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import numpy as np
from PIL import Image

from imagesearch.db import Database, embeddings
from imagesearch.images import repository
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.model.labels import (
    LabelVectorCache,
    LabelVectors,
    Vocabulary,
    default_vocabulary_path,
    load_vocabulary,
)
from imagesearch.model.registry import ModelRegistry


@dataclass(frozen=True)
class AutoTags:
    """An image's labels and what gave them (the `auto_tags_model` value)."""

    tags: tuple[str, ...]
    model: str | None  # None: not labelled (the "labels" step will)


NOT_LABELLED = AutoTags((), None)  # stored when labelling failed, so an older version's labels go


class Labeller:
    """Labels image vectors of the active model with a vocabulary (`labels_file`, else the package's one
    for the model); the label vectors are computed once per (model, vocabulary) and cached
    (`LabelVectorCache`: this process, then the database)."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        labels_file: Path | None = None,
        threshold: float | None = None,
        cache: LabelVectorCache,
    ) -> None:
        self.registry = registry
        self.labels_file = labels_file
        self.threshold = threshold  # None: the vocabulary's own
        self.cache = cache
        self._vocabularies: dict[Path, Vocabulary] = {}

    def active_model_id(self) -> str:
        """The model whose vectors are labelled: the one search uses."""
        return self.registry.active().id

    def model(self, model_id: str | None = None) -> EmbeddingModel:
        """The embedder of `model_id` (the active model); ModelUnavailable when it does not load here."""
        record = self.registry.record(model_id) if model_id else self.registry.active()
        return self.registry.embedder(record)

    def vocabulary(self, model: EmbeddingModel) -> Vocabulary:
        """The vocabulary `model`'s images are labelled with (VocabularyError when unusable)."""
        path = self.labels_file or default_vocabulary_path(model)
        found = self._vocabularies.get(path)
        if found is None:
            found = self._vocabularies[path] = load_vocabulary(path)
        return found

    def threshold_of(self, vocabulary: Vocabulary) -> float:
        return self.threshold if self.threshold is not None else vocabulary.threshold

    def version(self, model_id: str | None = None) -> str:
        """The `auto_tags_model` of labels from `model_id` (the active model): the model id, and a digest
        of the vocabulary and threshold."""
        model = self.model(model_id)
        vocabulary = self.vocabulary(model)
        digest = hashlib.sha256(f"{vocabulary.sha256}\n{self.threshold_of(vocabulary)!r}".encode())
        return f"{model.model_id}:{digest.hexdigest()[:16]}"

    def label_vectors(self, model_id: str | None = None) -> LabelVectors:
        """The vocabulary's vectors under `model_id` (the active model)."""
        model = self.model(model_id)
        return self.cache.get(model, self.vocabulary(model))

    def label(self, vectors: dict[str, np.ndarray]) -> AutoTags:
        """The labels of an image from its vectors (model id -> vector); NOT_LABELLED when it has no vector
        of the active model (the back-fill labels it once it has)."""
        model_id = self.active_model_id()
        vector = vectors.get(model_id)
        if vector is None:
            return NOT_LABELLED
        return self.tags_of(vector, model_id)

    def tags_of(self, vector: np.ndarray, model_id: str) -> AutoTags:
        """The labels of one image vector of `model_id`."""
        found = self.label_vectors(model_id)
        tags = found.labels_for(vector, threshold=self.threshold_of(found.vocabulary))
        return AutoTags(tuple(tags), self.version(model_id))


class _Source(Protocol):
    """What the step reads of an image (imagesearch.ingest.enrich.EnrichSource)."""

    @property
    def image_id(self) -> UUID: ...

    def image(self) -> Image.Image: ...


class LabelStep:
    """The "labels" enrichment step: label an image from its stored vector of the active model (the
    original is read only when that vector is missing)."""

    name = "labels"
    unread = "auto_tags_model IS DISTINCT FROM %(labels_model)s"
    images_per_message = 50  # the stored vector scored, no original read

    def __init__(self, labeller: Labeller) -> None:
        self.labeller = labeller

    def params(self) -> dict[str, Any]:
        return {"labels_model": self.labeller.version()}

    def enrich(self, db: Database, source: _Source) -> bool:
        labeller = self.labeller
        model_id = labeller.active_model_id()
        with db.connection() as conn:
            vector = embeddings.stored(conn, source.image_id, model_id)
        if vector is None:  # not reindexed yet: embed the original with the active model
            vector = labeller.model(model_id).embed_images([source.image()])[0]
        found = labeller.tags_of(vector, model_id)
        with db.connection() as conn:
            return repository.set_auto_tags(
                conn, source.image_id, list(found.tags), model=found.model, only_unread=True
            )
