"""Fixtures for the search tests: a gallery ingested through the real embed path, and the search app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from support.gallery import AddImages, Gallery
from support.images import make_image

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.ingest.events import ObjectEvent
from imagesearch.local.server import local_app
from imagesearch.runtime import get_runtime


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """Every route of both HTTP functions, as the local stack serves them."""
    with TestClient(local_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def add_images(settings: Settings, db: Database, client: TestClient) -> AddImages:
    """Upload pictures through POST /images and run the embed function on their events."""

    def add(*pictures: dict[str, Any]) -> Gallery:
        ids: dict[str, UUID] = {}
        events = []
        storage = get_runtime().storage
        for picture in pictures:
            spec = dict(picture)
            name = spec.pop("name")
            fields: dict[str, Any] = {k: spec.pop(k) for k in ("title", "description", "tags") if k in spec}
            filename = spec.pop("filename", f"{name}.png")
            data = spec.pop("data", None) or make_image(**spec)
            response = client.post("/images", files={"file": (filename, data)}, data=fields)
            assert response.status_code in (200, 201), response.text
            image = response.json()
            ids[name] = UUID(image["id"])
            key = f"originals/{DEFAULT_TENANT_ID}/{image['id']}"
            info = storage.head(key)
            events.append(ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put"))
        get_runtime().ingestor.ingest(events)
        return Gallery(ids)

    return add
