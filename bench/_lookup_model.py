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


class AliasModel:
    """A real model answering under the benchmark corpus's model id (same dimension), for the
    cached-text-model rows: its text tower runs, behind the query cache, on a synthetic corpus."""

    def __init__(self, inner: Any, model_id: str) -> None:
        self.inner = inner
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        result: np.ndarray = self.inner.embed_texts(texts, batch_size=batch_size)
        return result

    def embed_images(self, images: Sequence[Any], *, batch_size: int = 16) -> np.ndarray:
        result: np.ndarray = self.inner.embed_images(images, batch_size=batch_size)
        return result
