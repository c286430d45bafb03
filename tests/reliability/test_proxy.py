"""Through a transaction-pooling proxy (PgBouncer, the local stand-in for RDS Proxy).

In transaction mode a client has a server connection only for one transaction, so the code must keep no
session state; and a storm of Lambda-like clients must fit a server that allows far fewer connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from support.bundles import variant_bundle
from support.images import make_image
from support.storm import run_storm

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import AuthMode, Settings
from imagesearch.db import Database, migrate
from imagesearch.db.pool import hnsw_settings
from imagesearch.errors import DatabaseUnavailable
from imagesearch.images.object_keys import original_key
from imagesearch.ingest.events import ObjectEvent
from imagesearch.local.pgbouncer import PgBouncer
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS, EmbeddedPostgres
from imagesearch.local.server import local_app
from imagesearch.model.embedder import Embedder
from imagesearch.runtime import configure, get_runtime

# The storm: the figures. The server allows 40 connections; the proxy uses 30 of them.
CLIENTS = 300
SERVER_MAX_CONNECTIONS = 40
PROXY_SERVER_CONNECTIONS = 30


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL that accepts 40 connections, as a small RDS instance does."""
    server = EmbeddedPostgres(
        tmp_path_factory.mktemp("pg40") / "data",
        server_settings={**EPHEMERAL_SERVER_SETTINGS, "max_connections": str(SERVER_MAX_CONNECTIONS)},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bouncer(small_server: EmbeddedPostgres) -> Iterator[PgBouncer]:
    with PgBouncer(
        small_server.url("postgres"),
        pool_size=PROXY_SERVER_CONNECTIONS,
        max_db_connections=PROXY_SERVER_CONNECTIONS,
    ) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def model(model_bundle: Path) -> Embedder:
    return Embedder(model_bundle, threads=1)


def test_migrations_run_through_the_proxy(
    small_server: EmbeddedPostgres, bouncer: PgBouncer, database_url: str
) -> None:
    direct = small_server.ensure_database("migrated")
    migrate.upgrade(bouncer.url("migrated"))
    assert migrate.current(direct) == migrate.current(database_url) is not None
    with psycopg.connect(direct) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"images", "embeddings", "models", "tenants", "api_keys"} <= tables


def test_a_storm_of_300_clients_through_the_proxy_loses_nothing(
    small_server: EmbeddedPostgres, bouncer: PgBouncer, model: Embedder, tmp_path: Path
) -> None:
    direct = small_server.ensure_database("storm")
    migrate.upgrade(bouncer.url("storm"))
    result = run_storm(
        bouncer.url("storm"),
        clients=CLIENTS,
        direct_url=direct,
        model=model,
        storage_dir=tmp_path / "objects",
        # The proxy queues clients beyond its 30 server connections (as RDS Proxy does, up to its
        # ConnectionBorrowTimeout) instead of refusing them. Here 300 threads share two busy cores and one
        # GIL, so a client's first connection (configured in the pool's worker) can wait longer than the
        # app's 5 s default: the limit is one a queue of 300 can meet, and no client may fail within it.
        settings={"db_connect_timeout": 60.0},
    )
    assert result.errors == [], result.errors[:5]
    assert result.uploaded == result.ready == result.found == CLIENTS
    with psycopg.connect(direct) as conn:
        ready = conn.execute("SELECT count(*) FROM images WHERE status = 'ready'").fetchone()
        vectors = conn.execute("SELECT count(DISTINCT image_id) FROM embeddings").fetchone()
    assert ready == vectors == (CLIENTS,)
    # The proxy held the server to its own pool, whatever the number of clients.
    assert 0 < result.peak_server_connections <= PROXY_SERVER_CONNECTIONS


def test_the_same_storm_without_the_proxy_overruns_the_server(
    small_server: EmbeddedPostgres, model: Embedder, tmp_path: Path
) -> None:
    """The control: the storm above is a real one. Straight to the server, clients are refused."""
    direct = small_server.ensure_database("storm_direct")
    migrate.upgrade(direct)
    result = run_storm(
        direct,
        clients=CLIENTS,
        direct_url=direct,
        model=model,
        storage_dir=tmp_path / "objects",
        settings={"db_connect_timeout": 2.0},
    )
    assert len(result.errors) > 0
    assert result.ready < CLIENTS


@pytest.fixture
def one_server_connection(postgres: EmbeddedPostgres) -> Iterator[PgBouncer]:
    """A proxy in front of the session's server with a single server connection: every client's
    transactions run on it, one after another, so whatever one leaves behind the next one sees."""
    with PgBouncer(postgres.url("postgres"), pool_size=1, max_db_connections=1) as proxy:
        yield proxy


def session_state(url: str) -> tuple[str, str, int]:
    """(statement_timeout, hnsw.ef_search, prepared statements) as a new client of `url` finds them."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("LOAD 'vector'")  # pgvector's settings exist once its library is loaded
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        ef = conn.execute("SELECT current_setting('hnsw.ef_search', true)").fetchone()
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert timeout and ef and prepared
    return timeout[0], ef[0], prepared[0]


def test_the_pool_leaves_no_session_state_behind(one_server_connection: PgBouncer, database_url: str) -> None:
    url = one_server_connection.url(Path(database_url.split("?")[0]).name)
    before = session_state(url)
    pool = Database(url, max_size=1, statement_timeout_ms=1234)
    try:
        for _ in range(8):  # more than psycopg's default prepare threshold
            with pool.connection() as conn:
                assert conn.execute("SHOW statement_timeout").fetchone() == ("1234ms",)
            rows = pool.read(
                "SELECT current_setting('hnsw.ef_search'), current_setting('statement_timeout')",
                settings=hnsw_settings(77),
            )
            assert rows == [("77", "1234ms")]
    finally:
        pool.close()
    assert session_state(url) == before


def test_the_statement_timeout_holds_on_every_path(
    one_server_connection: PgBouncer, database_url: str
) -> None:
    for url in (database_url, one_server_connection.url(Path(database_url.split("?")[0]).name)):
        pool = Database(url, max_size=1, statement_timeout_ms=200)
        try:
            # Cancelled (QueryCanceled, a 503): without the timeout both sleeps would simply succeed.
            with pytest.raises(DatabaseUnavailable) as read_error:
                pool.read("SELECT pg_sleep(3)")
            with pytest.raises(DatabaseUnavailable) as write_error, pool.connection() as conn:
                conn.execute("SELECT pg_sleep(3)")
            for error in (read_error.value, write_error.value):
                assert isinstance(error.__cause__, psycopg.errors.QueryCanceled)
            assert pool.read("SELECT 1") == [(1,)]  # the pool goes on
        finally:
            pool.close()


def test_the_http_api_works_through_the_proxy(
    one_server_connection: PgBouncer, database_url: str, db: Database, settings: Settings
) -> None:
    """Keys, the rate limit, upload, the embed step, search and listing: all through one server
    connection shared in transaction mode, and no session state left on it afterwards."""
    url = one_server_connection.url(Path(database_url.split("?")[0]).name)
    before = session_state(url)
    configure(
        settings.model_copy(
            update={
                "database_url": url,
                "auth_mode": AuthMode.API_KEY,
                "rate_limit_per_second": 100.0,
                "db_pool_max": 1,
            }
        )
    )
    key, _ = ApiKeys(db).create("proxied")
    headers = {"authorization": f"Bearer {key}"}
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        created = client.post(
            "/images", headers=headers, files={"file": ("a.png", make_image(color="blue"), "image/png")}
        )
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        runtime = get_runtime()  # what the embed function does on the upload's object-created event
        stored = original_key(runtime.api_keys.verify(key).id, UUID(image_id))
        info = runtime.storage.head(stored)
        runtime.ingestor.ingest(
            [ObjectEvent("local", stored, info.size, info.etag, None, "ObjectCreated:Put")]
        )
        assert client.get(f"/images/{image_id}", headers=headers).json()["status"] == "ready"
        found = client.post("/search", headers=headers, json={"query": "a blue circle", "limit": 3})
        assert found.status_code == 200, found.text
        assert found.json()["results"][0]["id"] == image_id
        similar = client.get(f"/images/{image_id}/similar", headers=headers)
        assert similar.status_code == 200, similar.text
        listed = client.get("/images", headers=headers)
        assert [item["id"] for item in listed.json()["items"]] == [image_id]
    assert session_state(url) == before


def test_the_cli_reindexes_through_the_proxy(
    one_server_connection: PgBouncer,
    database_url: str,
    db: Database,
    settings: Settings,
    model_bundle: Path,
    tmp_path: Path,
) -> None:
    """`imagesearch reindex` (a back-fill of a second model, run by an operator) through a proxy with one
    server connection: every image gets the new model's vectors and the connection is left as it was."""
    url = one_server_connection.url(Path(database_url.split("?")[0]).name)
    runtime = get_runtime()
    for color in ("red", "green", "blue"):
        record, _ = runtime.images.upload(
            DEFAULT_TENANT, make_image(color=color), filename=color, title=None, description=None, tags=None
        )
        stored = original_key(DEFAULT_TENANT.id, record.id)
        info = runtime.storage.head(stored)
        runtime.ingestor.ingest(
            [ObjectEvent("local", stored, info.size, info.etag, None, "ObjectCreated:Put")]
        )
    second = variant_bundle(
        model_bundle, Path(str(settings.storage_url)[len("file://") :]).parent / "b", "second"
    )
    before = session_state(url)
    done = subprocess.run(
        [sys.executable, "-m", "imagesearch.cli.main", "reindex", "--model", str(second)],
        env={
            "PATH": os.environ["PATH"],
            "IMAGESEARCH_DATABASE_URL": url,
            "IMAGESEARCH_STORAGE_URL": str(settings.storage_url),
            "MODEL_DIR": str(model_bundle),
            "IMAGESEARCH_LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with db.connection() as conn:
        vectors = conn.execute("SELECT count(*) FROM embeddings WHERE model_id = 'second'").fetchone()
    assert vectors == (3,)
    assert session_state(url) == before
