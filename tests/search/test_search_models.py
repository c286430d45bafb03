"""The search path's model handling: the query cache, the replica, the active model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from support.models import CountingModel

from imagesearch.config import DEFAULT_TENANT_ID, Settings, load_settings
from imagesearch.db import Database, migrate
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.local.server import local_app
from imagesearch.model.embedder import Embedder
from imagesearch.model.query_cache import QueryCache, normalise_query
from imagesearch.runtime import configure, reset


def test_query_cache_keys_on_model_and_normalised_text(model_bundle: Path) -> None:
    model = CountingModel(Embedder(model_bundle))
    cache = QueryCache(size=2)

    first = cache.get(model, "  Red   CIRCLE ")
    again = cache.get(model, "red circle")
    assert model.text_calls == 1 and again is first and (cache.hits, cache.misses) == (1, 1)
    # The normalised text embeds exactly like the original: the tokenizer lowercases and collapses spaces.
    np.testing.assert_allclose(first, model.inner.embed_texts(["  Red   CIRCLE "])[0], rtol=0, atol=1e-6)
    assert not first.flags.writeable

    cache.get(model, "blue")
    cache.get(model, "green")  # evicts "red circle", the least recently used
    cache.get(model, "red circle")
    assert model.text_calls == 4
    assert normalise_query("Ｃafé\u0301  Bar") == normalise_query("ｃafé\u0301 bar")


@pytest.fixture
def replica_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A second database standing in for a read replica (same schema, its own rows)."""
    name = f"replica_{uuid.uuid4().hex[:8]}"
    url = postgres.ensure_database(name)
    migrate.upgrade(url)
    yield url
    reset()
    postgres.drop_database(name)


def test_search_reads_from_the_replica_when_one_is_set(
    settings: Settings, db: Database, replica_url: str
) -> None:
    replica = Database(replica_url)
    with replica.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, title, status) "
            "VALUES (%s, %s, 'k', %s, 'ready')",
            (uuid.uuid4(), DEFAULT_TENANT_ID, "only on the replica"),
        )
    replica.close()
    configure(load_settings(**{**settings.model_dump(), "database_replica_url": replica_url}))

    with TestClient(local_app()) as client:
        found = client.post("/search", json={"query": "replica", "mode": "keyword"}).json()["results"]
        listed = client.get("/images").json()["items"]
    assert [r["title"] for r in found] == ["only on the replica"]
    assert listed == []  # the images API stays on the primary
