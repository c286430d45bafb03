"""Alembic owns the schema: it applies, reverts and re-applies cleanly, and the schema does its job."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database, migrate
from imagesearch.local.postgres import EmbeddedPostgres


@pytest.fixture
def fresh_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    url = postgres.ensure_database(name)
    yield url
    postgres.drop_database(name)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade_on_a_fresh_database(fresh_url: str) -> None:
    assert migrate.current(fresh_url) is None

    migrate.upgrade(fresh_url)
    head = migrate.current(fresh_url)
    assert head is not None
    assert {"tenants", "api_keys", "images", "models", "embeddings"} <= tables(fresh_url)

    migrate.downgrade(fresh_url, "base")
    assert migrate.current(fresh_url) is None
    assert tables(fresh_url) == {"alembic_version"}

    migrate.upgrade(fresh_url)
    assert migrate.current(fresh_url) == head


def test_migrate_command_applies_to_the_configured_database(fresh_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imagesearch.cli.main", "migrate"],
        env={"IMAGESEARCH_DATABASE_URL": fresh_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout
    assert migrate.current(fresh_url) is not None


def insert_image(conn: psycopg.Connection, **values: object) -> uuid.UUID:
    image_id = uuid.uuid4()
    row = {"id": image_id, "tenant_id": DEFAULT_TENANT_ID, "storage_key": f"originals/{image_id}", **values}
    columns = ", ".join(row)
    placeholders = ", ".join(f"%({name})s" for name in row)
    conn.execute(f"INSERT INTO images ({columns}) VALUES ({placeholders})", row)
    return image_id


def test_keyword_vector_weights_title_and_tags_above_description_and_filename(db: Database) -> None:
    with db.connection() as conn:
        insert_image(
            conn,
            title="Sunset",
            tags=["Beach", "holiday"],
            description="dogs running",
            filename="IMG_beach-001.jpg",
        )
        (tsv,) = conn.execute("SELECT search_tsv::text FROM images").fetchone()  # type: ignore[misc]
    assert "'sunset':1A" in tsv
    assert "'beach':2A" in tsv and "'holiday':3A" in tsv
    assert "'dog':4B" in tsv and "'run':5B" in tsv
    # The filename is split on punctuation, so its words are keywords too (weight C).
    assert "'img':6C" in tsv and "'beach':2A,7C" in tsv


def test_keyword_vector_follows_updates(db: Database) -> None:
    with db.connection() as conn:
        image_id = insert_image(conn, title="old words")
        conn.execute("UPDATE images SET title = 'zebra crossing' WHERE id = %s", (image_id,))
        hit = conn.execute(
            "SELECT count(*) FROM images WHERE search_tsv @@ websearch_to_tsquery('english', 'zebra')"
        ).fetchone()
    assert hit == (1,)


def test_same_bytes_twice_in_one_tenant_is_refused_but_pending_rows_never_clash(db: Database) -> None:
    sha = "a" * 64
    with db.connection() as conn:
        insert_image(conn, sha256=sha)
        insert_image(conn)  # pending direct uploads have no hash yet
        insert_image(conn)
    with pytest.raises(psycopg.errors.UniqueViolation), db.connection() as conn:
        insert_image(conn, sha256=sha)


def test_trigram_index_serves_partial_filename_matches(db: Database) -> None:
    with db.connection() as conn:
        insert_image(conn, filename="holiday_barcelona_2024.jpg")
        insert_image(conn, filename="receipt.png")
        rows = conn.execute("SELECT filename FROM images WHERE filename ILIKE %s", ("%barcel%",)).fetchall()
        indexes = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'images'").fetchall()
    assert rows == [("holiday_barcelona_2024.jpg",)]
    assert any("gin_trgm_ops" in definition for (definition,) in indexes)


def test_the_code_knows_the_newest_migration() -> None:
    """SCHEMA_REVISION is what functions demand of their database: it must name the newest migration."""
    from alembic.script import ScriptDirectory

    from imagesearch.db.migrate import MIGRATIONS_DIR, SCHEMA_REVISION

    assert ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() == SCHEMA_REVISION


def test_functions_refuse_an_older_schema_then_serve_once_it_is_migrated(
    fresh_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """GIVEN code deployed before its migration ran, THEN requests get a clear 503 (and the log says why),
    never a 500 from a missing column; AND once the migration runs, the same process serves."""
    from fastapi.testclient import TestClient

    from imagesearch.db.migrate import SCHEMA_REVISION
    from imagesearch.errors import SchemaOutdated
    from imagesearch.local.server import local_app
    from imagesearch.runtime import configure

    migrate.upgrade(fresh_url, "0003")
    runtime = configure(settings.model_copy(update={"database_url": fresh_url}))
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        response = client.get("/images")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "30"
        assert response.headers["content-type"] == "application/problem+json"
        assert f"needs {SCHEMA_REVISION}" in response.json()["detail"]
        assert any("schema is older than this code needs" in r.getMessage() for r in caplog.records)
        with pytest.raises(SchemaOutdated):
            runtime.database.read("SELECT 1")

        migrate.upgrade(fresh_url)
        assert client.get("/images").status_code == 200


def test_halfvec_conversion_keeps_every_vector_and_rebuilds_each_index(fresh_url: str) -> None:
    """0005 converts stored vectors to halfvec (values kept to float16 precision) and rebuilds each model's
    partial HNSW index on the halfvec expression; the downgrade goes back to vector the same way."""
    import numpy as np
    from pgvector.psycopg import register_vector

    from imagesearch.db.embeddings import index_name

    migrate.upgrade(fresh_url, "0004")
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("INSERT INTO models (id, dim, state) VALUES ('m:one', 8, 'active')")
        conn.execute(
            f'CREATE INDEX "{index_name("m:one")}" ON embeddings USING hnsw '
            "((embedding::vector(8)) vector_cosine_ops) WHERE model_id = 'm:one'"
        )
        for vector in vectors:
            image = uuid.uuid4()
            conn.execute(
                "INSERT INTO images (id, tenant_id, storage_key, status) VALUES (%s, %s, %s, 'ready')",
                (image, DEFAULT_TENANT_ID, f"originals/{image}"),
            )
            conn.execute(
                "INSERT INTO embeddings (image_id, model_id, tenant_id, embedding) "
                "VALUES (%s, 'm:one', %s, %s)",
                (image, DEFAULT_TENANT_ID, vector),
            )

    def state() -> tuple[str, str, np.ndarray]:
        with psycopg.connect(fresh_url) as conn:
            register_vector(conn)
            kind = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'embeddings'::regclass AND attname = 'embedding'"
            ).fetchone()
            definition = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (index_name("m:one"),)
            ).fetchone()
            stored = conn.execute(
                "SELECT embedding::vector::real[] FROM embeddings ORDER BY created_at"
            ).fetchall()
        assert kind and definition
        return kind[0], definition[0], np.array([row[0] for row in stored], dtype=np.float32)

    migrate.upgrade(fresh_url, "0005")
    kind, definition, stored = state()
    assert kind == "halfvec"
    assert "halfvec_cosine_ops" in definition and "(embedding)::halfvec(8)" in definition
    assert np.allclose(stored, vectors, atol=1e-3)
    migrate.downgrade(fresh_url, "0004")
    kind, definition, stored = state()
    assert kind == "vector" and "vector_cosine_ops" in definition
    assert np.allclose(stored, vectors, atol=1e-3)
