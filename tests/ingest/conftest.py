"""Fixtures for the ingestion tests: the upload app over real Postgres and filesystem storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.ingest import Handler

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.ingest.processor import Ingestor
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import get_runtime
from imagesearch.storage import ObjectStorage


@pytest.fixture
def upload_app(settings: Settings, db: Database) -> Any:
    return load_function("upload").app


@pytest.fixture
def client(upload_app: Any) -> Iterator[TestClient]:
    with TestClient(upload_app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def storage(settings: Settings) -> ObjectStorage:
    return get_runtime().storage


@pytest.fixture
def ingestor(settings: Settings, db: Database) -> Ingestor:
    return get_runtime().ingestor


@pytest.fixture
def handler(settings: Settings, db: Database) -> Handler:
    """The embed function's handler, called with an event as Lambda calls it."""
    function = load_function("embed").handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = function(event, LocalLambdaContext(function_name="embed"))
        return result

    return invoke
