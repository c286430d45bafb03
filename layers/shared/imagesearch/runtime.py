"""The composition root: the one place that builds the process-wide objects from settings.

A `Runtime` holds the settings of a process and builds each part (databases, storage, models, services)
on first use, once: a Lambda container pays for what its function uses, on its first request. There is one
runtime per process at a time (`get_runtime()`, built from the environment). The local stack, the command
line and the tests install another with `configure(settings, **parts)`, where `parts` replace the built
ones (a storage adapter that fails on purpose, a model that counts its calls); nothing else swaps objects.

Loaded model bundles outlive a runtime that is replaced by one with the same bundle options: opening
onnxruntime sessions is the one cost worth carrying over.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from imagesearch.config import AuthMode, Settings, load_settings
from imagesearch.db import Database
from imagesearch.db.pool import database_from_settings, has_replica
from imagesearch.logs import logger
from imagesearch.model.registry import BundleOptions, ModelRegistry, configured_location, open_bundle
from imagesearch.storage import ObjectStorage, storage_from_settings
from imagesearch.storage.urls import UrlCache

# The services are imported by their builders: each function loads only what it uses (the embed function
# never imports the search path, the search function never the ingestion pipeline), and PyJWT with
# cryptography load only in jwt mode.
if TYPE_CHECKING:
    from imagesearch.auth.api_keys import ApiKeys
    from imagesearch.auth.jwt import JwtVerifier
    from imagesearch.auth.rate_limit import RateLimiter
    from imagesearch.images.service import ImageService
    from imagesearch.ingest.enrich import EnrichStep, Limits
    from imagesearch.ingest.labels import Labeller
    from imagesearch.ingest.ocr import OcrStep
    from imagesearch.ingest.processor import Ingestor
    from imagesearch.model.embedder import EmbeddingModel
    from imagesearch.search.service import SearchService
    from imagesearch.search.shadow import ShadowRunner
    from imagesearch.webhooks.dispatch import Dispatcher
    from imagesearch.webhooks.publisher import EventPublisher
    from imagesearch.webhooks.service import WebhookService

T = TypeVar("T")

# The parts a caller may hand in instead of having them built.
PARTS = frozenset({"database", "search_database", "storage", "configured_model", "publisher"})


class Runtime:
    """The process-wide objects of one set of settings, each built on first use."""

    def __init__(self, settings: Settings, **parts: Any) -> None:
        unknown = set(parts) - PARTS
        if unknown:
            raise TypeError(f"not a replaceable part: {sorted(unknown)}")
        self.settings = settings
        self.bundle_options = BundleOptions.from_settings(settings)
        self._parts: dict[str, Any] = dict(parts)
        self._owned: set[str] = set()  # parts built here (and so closed here)
        self._bundles: dict[str, EmbeddingModel] = {}
        self._lock = threading.RLock()

    def _part(self, name: str, build: Callable[[], T]) -> T:
        try:
            part: T = self._parts[name]
            return part
        except KeyError:
            pass
        with self._lock:  # re-entrant: a part's builder asks for the parts it is built from
            if name not in self._parts:
                self._parts[name] = build()
                self._owned.add(name)
            part = self._parts[name]
            return part

    # --- adapters ------------------------------------------------------------------------------------------
    @property
    def database(self) -> Database:
        """The primary database (reads and writes)."""
        return self._part(
            "database",
            lambda: database_from_settings(self.settings, role="primary"),
        )

    @property
    def search_database(self) -> Database:
        """The search path's database: the read replica when one is configured, else the primary."""

        def build() -> Database:
            if not has_replica(self.settings):
                return self.database
            return database_from_settings(self.settings, role="replica")

        return self._part("search_database", build)

    @property
    def storage(self) -> ObjectStorage:
        return self._part("storage", lambda: storage_from_settings(self.settings))

    @property
    def urls(self) -> UrlCache:
        """Download URLs reused across requests (and so cacheable by browsers)."""
        return self._part(
            "urls", lambda: UrlCache(self.storage, expiry_seconds=self.settings.presign_expiry_seconds)
        )

    # --- models --------------------------------------------------------------------------------------------
    def load_bundle(self, location: str) -> EmbeddingModel:
        """The embedder of the bundle at `location`, opened once per process."""
        model = self._bundles.get(location)
        if model is None:
            with self._lock:
                model = self._bundles.get(location)
                if model is None:
                    model = self._bundles[location] = open_bundle(location, self.bundle_options)
        return model

    @property
    def configured_model(self) -> EmbeddingModel:
        """The bundle of MODEL_URI, MODEL_DIR or the demo (ModelUnavailable when it cannot be opened)."""
        return self._part("configured_model", lambda: self.load_bundle(configured_location(self.settings)))

    @property
    def models(self) -> ModelRegistry:
        def build() -> ModelRegistry:
            s = self.settings
            return ModelRegistry(
                self.database,
                search_db=self.search_database,
                configured=lambda: self.configured_model,
                configured_uri=s.model_uri or (str(s.model_dir) if s.model_dir else None),
                load=self.load_bundle,
                query_cache_size=s.query_cache_size,
            )

        return self._part("models", build)

    # --- services ------------------------------------------------------------------------------------------
    @property
    def images(self) -> ImageService:
        def build() -> ImageService:
            from imagesearch.images.service import ImageService

            s = self.settings
            return ImageService(
                self.database,
                self.storage,
                max_upload_bytes=s.max_upload_bytes,
                max_image_pixels=s.max_image_pixels,
                url_expiry_seconds=s.presign_expiry_seconds,
                urls=self.urls,
                publisher=self.publisher,
            )

        return self._part("images", build)

    @property
    def shadow(self) -> ShadowRunner | None:
        """The shadow runner when a candidate strategy is configured; it records on the primary."""

        def build() -> ShadowRunner | None:
            s = self.settings
            candidate = s.shadow_candidate
            if candidate is None:
                return None
            from imagesearch.search.shadow import ShadowRunner

            return ShadowRunner(
                self.database, candidate, sample_rate=s.shadow_sample_rate, timeout_ms=s.shadow_timeout_ms
            )

        return self._part("shadow", build)

    @property
    def search(self) -> SearchService:
        def build() -> SearchService:
            from imagesearch.search.service import SearchService

            return SearchService(
                self.search_database,
                self.models,
                self.urls,
                strategy=self.settings.search_strategy,
                shadow=self.shadow,
            )

        return self._part("search", build)

    @property
    def ingestor(self) -> Ingestor:
        def build() -> Ingestor:
            from imagesearch.ingest.processor import Ingestor

            return Ingestor(
                self.database,
                self.storage,
                self.models.embedding_models,
                max_upload_bytes=self.settings.max_upload_bytes,
                max_image_pixels=self.settings.max_image_pixels,
                store_location=self.settings.store_location,
                publisher=self.publisher,
                labeller=self.labeller,
            )

        return self._part("ingestor", build)

    @property
    def labeller(self) -> Labeller | None:
        """Zero-shot labels with the configured vocabulary; None when off, or when the vocabulary file is
        unusable (said once in the log: uploads go on without labels)."""

        def build() -> Labeller | None:
            from imagesearch.ingest.labels import Labeller
            from imagesearch.model.labels import LabelVectorCache, VocabularyError, load_vocabulary

            s = self.settings
            if not s.labels_enabled:
                return None
            try:
                if s.labels_file is not None:
                    load_vocabulary(s.labels_file)  # a deployment's own file: checked now
            except VocabularyError as e:
                logger.error("labels are off: the vocabulary is unusable", extra={"error": e.detail})
                return None
            return Labeller(
                self.models,
                labels_file=s.labels_file,
                threshold=s.labels_threshold,
                cache=LabelVectorCache(self.database),
            )

        return self._part("labeller", build)

    def enrich_steps(self, *, ocr: bool = False) -> list[EnrichStep]:
        """The enrichment steps `imagesearch enrich` and enrich messages run, in order (the place needs the
        location EXIF gives). OCR only when asked: its engine is not in the embed function's layers."""
        from imagesearch.ingest.duplicates import PhashStep
        from imagesearch.ingest.enrich import ExifStep
        from imagesearch.ingest.places import PlaceStep

        steps: list[EnrichStep] = [
            ExifStep(store_location=self.settings.store_location),
            PlaceStep(),
            PhashStep(),
        ]
        if self.labeller is not None:
            from imagesearch.ingest.labels import LabelStep

            steps.append(LabelStep(self.labeller))
        if ocr and self.ocr_step is not None:
            steps.append(self.ocr_step)
        return steps

    @property
    def ocr_step(self) -> OcrStep | None:
        """The OCR step and its engine (whose models load on first use); None when the `ocr` setting is off
        or the engine is not installed here."""

        def build() -> OcrStep | None:
            from imagesearch.enrichment.ocr import OcrEngine, available
            from imagesearch.ingest.ocr import OcrStep

            if not self.settings.ocr:
                return None
            if not available():
                logger.warning("OCR is on, but rapidocr-onnxruntime is not installed: no text is read")
                return None
            engine = OcrEngine(threads=self.settings.ort_threads)
            return OcrStep(engine, max_pixels=self.settings.max_image_pixels)

        return self._part("ocr_step", build)

    @property
    def enrich_limits(self) -> Limits:
        from imagesearch.ingest.enrich import Limits

        return Limits(max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_image_pixels)

    # --- outbound events -----------------------------------------------------------------------------------
    @property
    def publisher(self) -> EventPublisher:
        """Where committed image events are announced: the EventBridge bus when one is set, else nowhere
        (webhooks need no announcement: their outbox rows are written with the change)."""

        def build() -> EventPublisher:
            from imagesearch.webhooks.publisher import EventBridgePublisher, NoPublisher, eventbridge_client

            bus = self.settings.eventbridge_bus_name
            if bus is None:
                return NoPublisher()
            return EventBridgePublisher(bus, eventbridge_client)  # the function's region (AWS_REGION)

        return self._part("publisher", build)

    @property
    def webhooks(self) -> WebhookService:
        def build() -> WebhookService:
            from imagesearch.webhooks.service import WebhookService

            return WebhookService(self.database, allow_private_urls=self.settings.webhook_allow_private_urls)

        return self._part("webhooks", build)

    @property
    def dispatcher(self) -> Dispatcher:
        """Sends the webhook outbox's due deliveries (the webhooks function, the local stack's thread)."""

        def build() -> Dispatcher:
            from imagesearch.webhooks.dispatch import Dispatcher
            from imagesearch.webhooks.sender import HttpSender

            s = self.settings
            sender = HttpSender(
                timeout_seconds=s.webhook_timeout_seconds, allow_private=s.webhook_allow_private_urls
            )
            return Dispatcher(self.database, sender, max_attempts=s.webhook_max_attempts)

        return self._part("dispatcher", build)

    # --- authentication ------------------------------------------------------------------------------------
    @property
    def api_keys(self) -> ApiKeys:
        """Key lookups read the search path's database (a replica will do); last use goes to the primary."""

        def build() -> ApiKeys:
            from imagesearch.auth.api_keys import ApiKeys

            return ApiKeys(
                self.search_database,
                writer=self.database,
                touch_seconds=self.settings.api_key_touch_seconds,
                cache_seconds=self.settings.api_key_cache_seconds,
                revocation_check_seconds=self.settings.api_key_revocation_check_seconds,
            )

        return self._part("api_keys", build)

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The per-tenant rate limit (buckets in the primary database), None when it is off."""

        def build() -> RateLimiter | None:
            limit = self.settings.rate_limit
            if limit is None:
                return None
            from imagesearch.auth.rate_limit import RateLimiter

            rate, burst, lease = limit
            return RateLimiter(self.database, rate=rate, burst=burst, lease=lease)

        return self._part("rate_limiter", build)

    @property
    def jwt(self) -> JwtVerifier | None:
        """The bearer-token verifier in jwt mode (it caches the identity provider's keys), else None."""

        def build() -> JwtVerifier | None:
            if self.settings.auth_mode is not AuthMode.JWT:
                return None
            from imagesearch.auth.jwt import JwtVerifier

            return JwtVerifier.from_settings(self.settings)

        return self._part("jwt", build)

    def prepare_search(self) -> None:
        """The work a search container can do before its first request without the database, for Lambda's
        init phase (which SnapStart snapshots): the search path built, and the configured model's text
        tower loaded and run once (onnxruntime allocates and tunes on its first run). No connection is
        opened: a snapshot must not hold one, and the pools open on first use anyway."""
        _ = self.search
        self.configured_model.embed_texts(["a first run before the first request"])

    def adopt_bundles(self, other: Runtime) -> None:
        """Keep the bundles `other` opened, when they were opened the same way."""
        if other.bundle_options == self.bundle_options:
            for location, model in other._bundles.items():
                self._bundles.setdefault(location, model)

    def close(self) -> None:
        """Close the database pools this runtime opened (the next use of a database opens a new pool)."""
        with self._lock:
            for name in ("search_database", "database"):
                if name in self._owned:
                    self._parts[name].close()


_current: Runtime | None = None
_current_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime; on first use, built from the environment's settings."""
    global _current
    runtime = _current
    if runtime is None:
        with _current_lock:
            if _current is None:
                _current = Runtime(load_settings())
            runtime = _current
    return runtime


def configure(settings: Settings | None = None, **parts: Any) -> Runtime:
    """Install a runtime for `settings` (default: the environment's) with `parts` handed in instead of
    built; the runtime it replaces is closed. Returns the new runtime."""
    runtime = Runtime(settings if settings is not None else load_settings(), **parts)
    _close(_swap(runtime))
    return runtime


def reset() -> None:
    """Close and drop the process's runtime; the next `get_runtime()` builds one from the environment."""
    _close(_swap(None))


@contextmanager
def using(settings: Settings, **parts: Any) -> Iterator[Runtime]:
    """A runtime for `settings` for the duration of the block; the previous one is put back after."""
    runtime = Runtime(settings, **parts)
    previous = _swap(runtime)
    try:
        yield runtime
    finally:
        _swap(previous)
        runtime.close()


def prepare_at_init() -> None:
    """Called by the search function's module at import, in Lambda's init phase: with
    IMAGESEARCH_WARM_MODEL_AT_INIT, warm the search path (`Runtime.prepare_search`); under SnapStart,
    register the hooks around the snapshot (no pool before it; a fresh random seed after each restore,
    since every restored copy would otherwise draw the same numbers)."""
    current = _current
    if not (current.settings if current is not None else load_settings()).warm_model_at_init:
        return  # nothing built: the runtime stays lazy
    runtime = get_runtime()
    started = time.perf_counter()
    runtime.prepare_search()
    logger.info("search warmed at init", extra={"seconds": round(time.perf_counter() - started, 3)})
    try:
        from snapshot_restore_py import (  # Lambda's runtime only
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return
    register_before_snapshot(lambda: get_runtime().close())
    register_after_restore(_after_restore)


def _after_restore() -> None:
    random.seed()
    logger.info("restored from a SnapStart snapshot")


def _swap(runtime: Runtime | None) -> Runtime | None:
    """Make `runtime` the process's, keeping the bundles the one before it opened; returns that one."""
    global _current
    with _current_lock:
        previous, _current = _current, runtime
    if runtime is not None and previous is not None:
        runtime.adopt_bundles(previous)
    return previous


def _close(runtime: Runtime | None) -> None:
    if runtime is not None:
        runtime.close()
