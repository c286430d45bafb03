"""FastAPI dependencies as Annotated aliases, and the per-process objects the services share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends

from imagesearch.config import Settings, get_settings
from imagesearch.db import Database, get_database, get_search_database
from imagesearch.images.service import ImageService
from imagesearch.model.embedder import get_embedder
from imagesearch.search.models import SearchModels
from imagesearch.search.service import SearchService
from imagesearch.search.shadow import ShadowRunner
from imagesearch.search.strategy import parse_strategy
from imagesearch.storage import ObjectStorage, get_storage
from imagesearch.storage.urls import UrlCache


async def database() -> Database:
    return get_database()


async def current_settings() -> Settings:
    return get_settings()


# Dependencies are `async def` although they only return objects: FastAPI runs each sync dependency in
# the thread pool, and ten thread hops per request cost more than the search itself (bench/search.py).
SettingsDep = Annotated[Settings, Depends(current_settings)]
DbDep = Annotated[Database, Depends(database)]


T = TypeVar("T")
_per_process: dict[str, tuple[tuple[object, ...], Any]] = {}


def per_process(name: str, inputs: tuple[object, ...], build: Callable[[], T]) -> T:
    """One `name` object per process (caches, loaded models, key lookups), built again when any of the
    objects it was built from is replaced (tests and `use_settings` swap settings and storage)."""
    held = _per_process.get(name)
    if held is None or any(a is not b for a, b in zip(held[0], inputs, strict=True)):
        held = (inputs, build())
        _per_process[name] = held
    result: T = held[1]
    return result


def url_cache(settings: Settings, storage: ObjectStorage) -> UrlCache:
    """One per process, so URLs are reused across requests (and stay cacheable by browsers)."""
    return per_process(
        "url_cache",
        (settings, storage),
        lambda: UrlCache(storage, expiry_seconds=settings.presign_expiry_seconds),
    )


def search_models(settings: Settings, db: Database) -> SearchModels:
    """One per process (it holds the query cache and the loaded model); rebuilt if settings are replaced."""
    return per_process(
        "search_models",
        (settings,),
        lambda: SearchModels(db, get_embedder, cache_size=settings.query_cache_size),
    )


def shadow_runner(settings: Settings) -> ShadowRunner | None:
    """The process's shadow runner when a candidate strategy is configured; it records on the primary."""

    def build() -> ShadowRunner | None:
        if not (settings.shadow_strategy and settings.shadow_sample_rate > 0):
            return None
        return ShadowRunner(
            get_database(),
            parse_strategy(settings.shadow_strategy),
            sample_rate=settings.shadow_sample_rate,
            timeout_ms=settings.shadow_timeout_ms,
        )

    return per_process("shadow_runner", (settings,), build)


# The services are dependencies without sub-dependencies: FastAPI's dependency solving costs tens of
# microseconds per node and per request, and a tree of six nodes was a visible share of a 5 ms search.
async def image_service() -> ImageService:
    settings, storage = get_settings(), get_storage()
    return ImageService(
        get_database(),
        storage,
        max_upload_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        url_expiry_seconds=settings.presign_expiry_seconds,
        urls=url_cache(settings, storage),
    )


ImageServiceDep = Annotated[ImageService, Depends(image_service)]


async def search_service() -> SearchService:
    settings, storage, db = get_settings(), get_storage(), get_search_database()
    return SearchService(
        db,
        storage,
        search_models(settings, db),
        strategy=settings.search_strategy,
        url_expiry_seconds=settings.presign_expiry_seconds,
        shadow=shadow_runner(settings),
        urls=url_cache(settings, storage),
    )


SearchServiceDep = Annotated[SearchService, Depends(search_service)]
