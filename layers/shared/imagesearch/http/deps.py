"""FastAPI dependencies as Annotated aliases; tests override the underlying functions."""

from __future__ import annotations

from typing import Annotated

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


async def search_database() -> Database:
    return get_search_database()


async def storage() -> ObjectStorage:
    return get_storage()


async def current_settings() -> Settings:
    return get_settings()


# Dependencies are `async def` although they only return objects: FastAPI runs each sync dependency in
# the thread pool, and ten thread hops per request cost more than the search itself (bench/search.py).
SettingsDep = Annotated[Settings, Depends(current_settings)]
DbDep = Annotated[Database, Depends(database)]
SearchDbDep = Annotated[Database, Depends(search_database)]
StorageDep = Annotated[ObjectStorage, Depends(storage)]


_urls: tuple[Settings, ObjectStorage, UrlCache] | None = None


async def url_cache(settings: SettingsDep, storage: StorageDep) -> UrlCache:
    """One per process, so URLs are reused across requests (and stay cacheable by browsers)."""
    global _urls
    if _urls is None or _urls[0] is not settings or _urls[1] is not storage:
        _urls = (settings, storage, UrlCache(storage, expiry_seconds=settings.presign_expiry_seconds))
    return _urls[2]


UrlCacheDep = Annotated[UrlCache, Depends(url_cache)]


async def image_service(
    db: DbDep, storage: StorageDep, settings: SettingsDep, urls: UrlCacheDep
) -> ImageService:
    return ImageService(
        db,
        storage,
        max_upload_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        url_expiry_seconds=settings.presign_expiry_seconds,
        urls=urls,
    )


ImageServiceDep = Annotated[ImageService, Depends(image_service)]


_search_models: tuple[Settings, SearchModels] | None = None


async def search_models(settings: SettingsDep, db: SearchDbDep) -> SearchModels:
    """One per process (it holds the query cache and the loaded model); rebuilt if settings are replaced."""
    global _search_models
    if _search_models is None or _search_models[0] is not settings:
        _search_models = (settings, SearchModels(db, get_embedder, cache_size=settings.query_cache_size))
    return _search_models[1]


_shadow: tuple[Settings, ShadowRunner | None] | None = None


async def shadow_runner(settings: SettingsDep) -> ShadowRunner | None:
    """The process's shadow runner when a candidate strategy is configured; it records on the primary."""
    global _shadow
    if _shadow is None or _shadow[0] is not settings:
        runner = None
        if settings.shadow_strategy and settings.shadow_sample_rate > 0:
            runner = ShadowRunner(
                get_database(),
                parse_strategy(settings.shadow_strategy),
                sample_rate=settings.shadow_sample_rate,
                timeout_ms=settings.shadow_timeout_ms,
            )
        _shadow = (settings, runner)
    return _shadow[1]


async def search_service(
    db: SearchDbDep,
    storage: StorageDep,
    settings: SettingsDep,
    models: Annotated[SearchModels, Depends(search_models)],
    shadow: Annotated[ShadowRunner | None, Depends(shadow_runner)],
    urls: UrlCacheDep,
) -> SearchService:
    return SearchService(
        db,
        storage,
        models,
        strategy=settings.search_strategy,
        url_expiry_seconds=settings.presign_expiry_seconds,
        shadow=shadow,
        urls=urls,
    )


SearchServiceDep = Annotated[SearchService, Depends(search_service)]
