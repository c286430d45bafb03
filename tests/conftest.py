"""Shared fixtures: one embedded PostgreSQL per session with migrations applied; rows cleaned per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fuzz

from imagesearch.config import DEMO_MODEL_DIR, Settings, load_settings
from imagesearch.db import Database, migrate
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS, EmbeddedPostgres
from imagesearch.runtime import configure, reset

# In CI (`CI=true`), a skip not on the allow-list fails the run and is listed with its reason.
pytest_plugins = ["support.ci_skips"]

fuzz.load_profile()

TEST_DATABASE = "imagesearch_test"
# OCR (about 0.35 s of CPU an image) is off unless a test turns it on (tests/ingest/test_ocr.py and
# tests/search/test_ocr_search.py do); set here so the stacks and subprocesses the tests start inherit it.
os.environ.setdefault("IMAGESEARCH_OCR", "false")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """The session's PostgreSQL server (the real embedded one: pgvector, pg_trgm)."""
    server = EmbeddedPostgres(
        tmp_path_factory.mktemp("pg") / "data", server_settings=EPHEMERAL_SERVER_SETTINGS
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    """A database with every migration applied, once per session."""
    postgres.drop_database(TEST_DATABASE)
    url = postgres.ensure_database(TEST_DATABASE)
    migrate.upgrade(url)
    return url


def clean_rows(db: Database) -> None:
    """Empty every table the application writes; keep the schema and the default tenant."""
    with db.connection() as conn:
        tables = conn.execute(
            "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename NOT IN ('alembic_version', 'tenants')"
        ).fetchone()
        if tables and tables[0]:
            conn.execute(f"TRUNCATE {tables[0]} CASCADE")
        conn.execute("DELETE FROM tenants WHERE id <> '00000000-0000-0000-0000-000000000001'")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A pool on the test database, with every table emptied before the test."""
    database = Database(database_url, max_size=4)
    clean_rows(database)
    yield database
    database.close()


# A tiny open_clip configuration for when the committed demo bundle is absent (needs the export extra).
TINY_MODEL_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 32, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def model_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model bundle: the committed demo model (its runtime needs no torch)."""
    if (DEMO_MODEL_DIR / "manifest.json").exists():
        return DEMO_MODEL_DIR
    from imagesearch.export.bundle import export_pretrained

    out = tmp_path_factory.mktemp("bundle") / "tiny"
    export_pretrained("tiny-test-resnet", "none", out, model_config=TINY_MODEL_CONFIG)
    return out


@pytest.fixture
def settings(database_url: str, tmp_path: Path, model_bundle: Path) -> Iterator[Settings]:
    """The process's runtime for one test: the test database and filesystem storage under tmp_path."""
    value = load_settings(
        database_url=database_url,
        storage_url=f"file://{tmp_path / 'objects'}",
        signing_secret="test-secret",
        public_base_url="http://testserver",
        model_dir=model_bundle,
    )
    configure(value)
    yield value
    reset()
