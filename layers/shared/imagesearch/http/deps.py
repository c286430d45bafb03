"""FastAPI dependencies as Annotated aliases over the process's runtime (imagesearch.runtime)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.images.service import ImageService
from imagesearch.runtime import get_runtime
from imagesearch.search.service import SearchService
from imagesearch.webhooks.service import WebhookService


# Dependencies are `async def` although they only return objects: FastAPI runs each sync dependency in
# the thread pool, and a thread hop per dependency costs more than the search itself (docs/search.md).
# None has sub-dependencies: FastAPI solves the dependency tree anew for every request.
async def current_settings() -> Settings:
    return get_runtime().settings


async def database() -> Database:
    return get_runtime().database


async def image_service() -> ImageService:
    return get_runtime().images


async def search_service() -> SearchService:
    return get_runtime().search


async def webhook_service() -> WebhookService:
    return get_runtime().webhooks


SettingsDep = Annotated[Settings, Depends(current_settings)]
DbDep = Annotated[Database, Depends(database)]
ImageServiceDep = Annotated[ImageService, Depends(image_service)]
SearchServiceDep = Annotated[SearchService, Depends(search_service)]
WebhookServiceDep = Annotated[WebhookService, Depends(webhook_service)]
