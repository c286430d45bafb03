"""The models of a deployment: which bundle it was given and from where, which model answers searches,
which are being back-filled, and the cache of query embeddings. search/ and ingest/ ask this module.

A bundle is a directory (MODEL_DIR, or a path recorded for a back-filled model) or a location that is
fetched into a local cache once per container (MODEL_URI: s3://bucket/prefix/ or file:///dir/).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from imagesearch.config import DEFAULT_MAX_IMAGE_PIXELS, DEMO_MODEL_DIR, Settings
from imagesearch.db import Database
from imagesearch.db import model_records as records
from imagesearch.db.model_records import ModelRecord
from imagesearch.errors import ModelUnavailable
from imagesearch.logs import logger
from imagesearch.model.embedder import Embedder, EmbeddingModel
from imagesearch.model.query_cache import QueryCache

REMOTE_SCHEMES = ("s3", "file")
_BUNDLE_HINT = "set MODEL_DIR to a bundle made by `imagesearch model export`"


@dataclass(frozen=True)
class BundleOptions:
    """How bundles are opened in this process: onnxruntime threads (and whether they spin), the pixel
    limit, where remote bundles are cached and which S3 endpoint serves them."""

    threads: int = 0
    spinning: bool = False
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    cache_dir: Path = Path("/tmp/imagesearch-models")
    endpoint_url: str | None = None
    region: str | None = None

    def embedder_options(self) -> dict[str, Any]:
        """What an Embedder is given of these options."""
        return {"threads": self.threads, "spinning": self.spinning, "max_image_pixels": self.max_image_pixels}

    @classmethod
    def from_settings(cls, settings: Settings) -> BundleOptions:
        return cls(
            threads=settings.ort_threads,
            spinning=settings.ort_spinning,
            max_image_pixels=settings.max_image_pixels,
            cache_dir=settings.model_cache_dir,
            endpoint_url=settings.storage_endpoint_url,
            region=settings.storage_region,
        )


def configured_location(settings: Settings) -> str:
    """The bundle this deployment was given: MODEL_URI, else MODEL_DIR, else the committed demo bundle."""
    if settings.model_uri is not None:
        return settings.model_uri
    bundle_dir = settings.model_dir if settings.model_dir is not None else DEMO_MODEL_DIR
    if not bundle_dir.is_dir():
        if settings.model_dir is None:
            raise ModelUnavailable(
                f"MODEL_DIR is not set and the demo bundle {bundle_dir} is missing: {_BUNDLE_HINT}"
            )
        raise ModelUnavailable(f"MODEL_DIR {bundle_dir} is not a directory: {_BUNDLE_HINT}")
    return str(bundle_dir.resolve())


def open_bundle(location: str, options: BundleOptions) -> EmbeddingModel:
    """An embedder for the bundle at `location` (a directory, or an s3:// or file:// URI); only the
    manifest is read now, the towers on first use."""
    if urlparse(location).scheme in REMOTE_SCHEMES:
        # boto3 is imported only by processes that use a remote bundle.
        from imagesearch.model.remote_bundle import RemoteBundleEmbedder, open_remote_bundle

        bundle = open_remote_bundle(
            location, options.cache_dir, endpoint_url=options.endpoint_url, region=options.region
        )
        return RemoteBundleEmbedder(
            bundle,
            threads=options.threads,
            spinning=options.spinning,
            max_image_pixels=options.max_image_pixels,
        )
    if not Path(location).is_dir():
        raise ModelUnavailable(f"the model bundle {location} is not a directory: {_BUNDLE_HINT}")
    return Embedder(
        location,
        threads=options.threads,
        spinning=options.spinning,
        max_image_pixels=options.max_image_pixels,
    )


BundleLoader = Callable[[str], EmbeddingModel]  # opens a bundle once, then hands out the same embedder


class ModelRegistry:
    """The configured model, the active one (re-read every `active_ttl_seconds`), the back-filled ones
    (re-read every `refresh_seconds`), and the query cache. Bundles are opened through `load`, which keeps
    each one open (the runtime's `load_bundle`)."""

    def __init__(
        self,
        db: Database,
        *,
        configured: Callable[[], EmbeddingModel],
        configured_uri: str | None,
        load: BundleLoader,
        search_db: Database | None = None,
        active_ttl_seconds: float = 30.0,
        refresh_seconds: float = 60.0,
        query_cache_size: int = 1024,
    ) -> None:
        self.db = db
        self.search_db = search_db or db
        self._configured = configured
        self._configured_uri = configured_uri
        self._load = load
        self.active_ttl_seconds = active_ttl_seconds  # how stale search's view of the active model may be
        self._refresh_seconds = refresh_seconds
        self._refresh_lock = threading.Lock()
        self._active: tuple[float, ModelRecord] | None = None
        self._registered = False
        # (when read, the models, the ids of those whose bundle does not load here)
        self._embedding: tuple[float, list[EmbeddingModel], frozenset[str]] | None = None
        self.cache = QueryCache(query_cache_size)

    @property
    def configured(self) -> EmbeddingModel:
        """The bundle this deployment was given (ModelUnavailable when it cannot be opened)."""
        return self._configured()

    # --- search: the active model ------------------------------------------------------------------------
    def active(self) -> ModelRecord:
        """The active model's record; before any image was embedded, the configured model's."""
        now = time.monotonic()
        cached = self._active
        if cached is not None and now - cached[0] < self.active_ttl_seconds:
            return cached[1]
        with self.search_db.connection() as conn:
            record = records.active_model(conn)
        if record is None:
            configured = self.configured
            record = ModelRecord(
                id=configured.model_id, dim=configured.dim, state="unregistered", bundle_uri=None
            )
        self._active = (now, record)
        return record

    def record_in_memory(self, model_id: str | None) -> ModelRecord | None:
        """What `record(model_id)` (`active()` for None) returns, when that needs no database read; else None
        (the search path then reads it on a worker thread, SearchService.asearch)."""
        cached = self._active
        if cached is None or time.monotonic() - cached[0] >= self.active_ttl_seconds:
            return None
        record = cached[1]
        return record if model_id is None or model_id == record.id else None

    def record(self, model_id: str) -> ModelRecord:
        """The record of `model_id` (ModelUnavailable when this deployment has no such model)."""
        if model_id == self.active().id:
            return self.active()
        with self.search_db.connection() as conn:
            record = records.get_model(conn, model_id)
        if record is None:
            raise ModelUnavailable(f"no model {model_id!r} in this deployment")
        return record

    def embedder(self, record: ModelRecord) -> EmbeddingModel:
        """The embedder of `record`: the configured bundle when it is that model, else its bundle_uri."""
        configured = self.configured
        if configured.model_id == record.id:
            return configured
        if not record.bundle_uri:
            raise ModelUnavailable(
                f"model {record.id} has no bundle this function can load; deploy it with MODEL_URI/MODEL_DIR"
            )
        return self._load(record.bundle_uri)

    def text_cached(self, record: ModelRecord, text: str) -> bool:
        """Whether `text_vector(record, text)` comes from the query cache, without the text tower."""
        return self.cache.contains(record.id, text)

    def text_vector(self, record: ModelRecord, text: str) -> np.ndarray:
        """The query embedding of `text` under `record`'s model, from the cache when it was asked before."""
        return self.cache.get(self.embedder(record), text)

    # --- ingestion: every model new images get a vector of ------------------------------------------------
    def embedding_models(self, *, including: Collection[str] = ()) -> list[EmbeddingModel]:
        """The configured model (registered on first use), then every other model being back-filled or
        active whose bundle loads here; one whose bundle does not is left out, with a warning. The list is
        read again after `refresh_seconds`, or at once when `including` names a model it does not know
        (one registered since: the ingestor saw it in the database)."""
        cached = self._embedding
        if cached is not None and time.monotonic() - cached[0] < self._refresh_seconds:
            known = {model.model_id for model in cached[1]} | cached[2]
            if known.issuperset(including):
                return cached[1]
        with self._refresh_lock:
            return self._refresh_embedding_models()

    def _refresh_embedding_models(self) -> list[EmbeddingModel]:
        now = time.monotonic()
        if not self._registered:
            self.register_configured()
        configured = self.configured
        with self.db.connection() as conn:
            wanted = [
                r for r in records.models_in_state(conn, "backfill", "active") if r.id != configured.model_id
            ]
        models = [configured]
        unloadable: set[str] = set()
        for record in wanted:
            try:
                models.append(self.embedder(record))
            except ModelUnavailable as e:
                unloadable.add(record.id)
                logger.warning(
                    "model bundle not loadable here; new images miss its vectors until reindex",
                    extra={"model_id": record.id, "bundle_uri": record.bundle_uri, "error": e.detail},
                )
        self._embedding = (now, models, frozenset(unloadable))
        return models

    def register_configured(self) -> ModelRecord:
        """Record the configured model (and create its index); the first model of a deployment is active."""
        record = self.register(self.configured, bundle_uri=self._configured_uri)
        self._registered = True
        return record

    def register(self, model: EmbeddingModel, *, bundle_uri: str | None) -> ModelRecord:
        """Record `model` (idempotent): a new model beside an active one starts in back-fill."""
        manifest = getattr(model, "manifest", None)
        with self.db.connection() as conn:
            record = records.register_model(
                conn,
                model_id=model.model_id,
                dim=model.dim,
                manifest=manifest.model_dump(mode="json") if manifest is not None else None,
                bundle_uri=bundle_uri,
            )
        self._embedding = None  # a model registered here is embedded with from the next image on
        return record
