"""A stand-in text model for benchmarks: known query texts map to precomputed vectors (no model run)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class LookupModel:
    """Implements the EmbeddingModel protocol for a fixed set of query texts."""

    def __init__(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        self._model_id = model_id
        self._vectors = {" ".join(t.lower().split()): v for t, v in zip(texts, vectors, strict=True)}
        self._dim = int(vectors.shape[1])

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return np.stack([self._vectors[" ".join(t.lower().split())] for t in texts])

    def embed_images(self, images: Sequence[Any], *, batch_size: int = 16) -> np.ndarray:
        raise NotImplementedError("benchmarks search by text only")
