"""A cache of query embeddings: the same words searched again never run the text tower twice."""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict

import numpy as np

from imagesearch.model.embedder import EmbeddingModel
from imagesearch.observability import QUERY_CACHE_HITS, QUERY_CACHE_MISSES, metrics


def normalise_query(text: str) -> str:
    """The cache key of a text: the tokenizer lowercases and collapses whitespace, so these embed alike."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


class QueryCache:
    """A thread-safe LRU of query embeddings keyed by (model, normalised text)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def contains(self, model_id: str, text: str) -> bool:
        """Whether `get` would answer from the cache (not counted as a hit or a miss)."""
        return (model_id, normalise_query(text)) in self._items

    def get(self, model: EmbeddingModel, text: str) -> np.ndarray:
        key = (model.model_id, normalise_query(text))
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
                self.hits += 1
                metrics.add(QUERY_CACHE_HITS)
                return vector
            self.misses += 1
            metrics.add(QUERY_CACHE_MISSES)
        vector = model.embed_texts([key[1]])[0]
        vector.setflags(write=False)  # shared between requests
        with self._lock:
            self._items[key] = vector
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return vector
