"""A real embedder that counts its text tower runs: what a test hands the runtime as its configured model
to see whether something was computed or came from a cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imagesearch.model.embedder import Embedder
from imagesearch.model.manifest import Manifest


class CountingModel:
    """A real embedder that counts its text tower runs."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.text_calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def manifest(self) -> Manifest:
        return self.inner.manifest

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.text_calls += 1
        return self.inner.embed_texts(texts)

    def embed_images(self, images: Sequence[Any], *, batch_size: int = 16) -> np.ndarray:
        return self.inner.embed_images(images)
