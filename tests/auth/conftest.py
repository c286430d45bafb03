"""Two tenants with API keys, over every route of both functions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.config import AuthMode, Settings
from imagesearch.db import Database
from imagesearch.local.server import local_app
from imagesearch.runtime import configure


@pytest.fixture
def keyed_settings(settings: Settings) -> Settings:
    value = settings.model_copy(update={"auth_mode": AuthMode.API_KEY, "api_key_cache_seconds": 0.0})
    configure(value)
    return value


@pytest.fixture
def alice(db: Database, keyed_settings: Settings) -> Caller:
    key, _ = ApiKeys(db).create("alice-corp")
    return Caller("alice-corp", key)


@pytest.fixture
def bob(db: Database, keyed_settings: Settings) -> Caller:
    key, _ = ApiKeys(db).create("bob-llc")
    return Caller("bob-llc", key)


@pytest.fixture
def client(keyed_settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(local_app(), raise_server_exceptions=False) as test_client:
        yield test_client
