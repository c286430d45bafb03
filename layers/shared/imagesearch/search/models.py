"""The model search answers with (the active one), its embedder, and a cache of query embeddings."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from imagesearch.db import Database
from imagesearch.db import models as model_rows
from imagesearch.db.models import ModelRecord
from imagesearch.errors import ModelUnavailable
from imagesearch.ingest.models import ModelLoader, load_local_bundle
from imagesearch.model.embedder import EmbeddingModel


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

    def get(self, model: EmbeddingModel, text: str) -> np.ndarray:
        key = (model.model_id, normalise_query(text))
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return vector
            self.misses += 1
        vector = model.embed_texts([key[1]])[0]
        vector.setflags(write=False)  # shared between requests
        with self._lock:
            self._items[key] = vector
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return vector


class SearchModels:
    """Resolves the active model (re-read every `ttl` seconds) and the embedder for it."""

    def __init__(
        self,
        db: Database,
        configured: Callable[[], EmbeddingModel],
        *,
        loader: ModelLoader = load_local_bundle,
        ttl_seconds: float = 30.0,
        cache_size: int = 1024,
    ) -> None:
        self.db = db
        self._configured = configured
        self._loader = loader
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._active: tuple[float, ModelRecord] | None = None
        self._embedders: dict[str, EmbeddingModel] = {}
        self.cache = QueryCache(cache_size)

    def active(self) -> ModelRecord:
        """The active model's record; before any image was embedded, the configured model's."""
        now = time.monotonic()
        cached = self._active
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        with self.db.connection() as conn:
            record = model_rows.active_model(conn)
        if record is None:
            configured = self._configured()
            record = ModelRecord(
                id=configured.model_id, dim=configured.dim, state="unregistered", bundle_uri=None
            )
        self._active = (now, record)
        return record

    def record(self, model_id: str) -> ModelRecord:
        if model_id == self.active().id:
            return self.active()
        with self.db.connection() as conn:
            record = model_rows.get_model(conn, model_id)
        if record is None:
            raise ModelUnavailable(f"no model {model_id!r} in this deployment")
        return record

    def embedder(self, record: ModelRecord) -> EmbeddingModel:
        """The embedder for `record`: the configured bundle when it is that model, else its bundle_uri."""
        model = self._embedders.get(record.id)
        if model is not None:
            return model
        with self._lock:
            configured = self._configured()
            if configured.model_id == record.id:
                model = configured
            else:
                model = self._loader(record)
                if model is None:
                    raise ModelUnavailable(
                        f"the active model {record.id} has no bundle this function can load "
                        f"(bundle_uri={record.bundle_uri!r}); deploy it with MODEL_URI/MODEL_DIR"
                    )
            self._embedders[record.id] = model
            return model

    def text_vector(self, record: ModelRecord, text: str) -> np.ndarray:
        return self.cache.get(self.embedder(record), text)
