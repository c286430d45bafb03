"""Webhook tests: two tenants with keys, the upload app, a receiver on 127.0.0.1, a dispatcher on a
clock the test moves (so retries come due without sleeping)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller
from support.webhooks import MovableClock, Receiver, receiving

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.config import AuthMode, Settings
from imagesearch.db import Database
from imagesearch.local.functions import load_function
from imagesearch.runtime import configure, get_runtime
from imagesearch.webhooks.dispatch import Dispatcher
from imagesearch.webhooks.sender import HttpSender

# Short, so a retry test moves the clock by seconds (the real schedule is 30 s, 2 min, 10 min, ...).
TEST_SCHEDULE = (10.0, 20.0, 40.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as result:
        yield result


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """API keys on, and webhooks allowed to loopback (the receiver)."""
    value = settings.model_copy(
        update={
            "auth_mode": AuthMode.API_KEY,
            "api_key_cache_seconds": 0.0,
            "webhook_allow_private_urls": True,
        }
    )
    configure(value)
    return value


@pytest.fixture
def alice(db: Database, hook_settings: Settings) -> Caller:
    key, _ = ApiKeys(db).create("alice-corp")
    return Caller("alice-corp", key)


@pytest.fixture
def bob(db: Database, hook_settings: Settings) -> Caller:
    key, _ = ApiKeys(db).create("bob-llc")
    return Caller("bob-llc", key)


@pytest.fixture
def client(hook_settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(load_function("upload").app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def dispatcher(hook_settings: Settings, clock: MovableClock) -> Dispatcher:
    return Dispatcher(
        get_runtime().database,
        HttpSender(timeout_seconds=2.0, allow_private=True),
        max_attempts=3,
        schedule=TEST_SCHEDULE,
        clock=clock,
    )
