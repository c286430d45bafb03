"""The pool: lazy, pgvector-aware, and it survives a database restart (its sync connections and the async
ones of `Database.aread`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from support.live import run_async

from imagesearch.db import Database
from imagesearch.errors import DatabaseUnavailable
from imagesearch.local.postgres import EPHEMERAL_SERVER_SETTINGS, EmbeddedPostgres


def test_pool_opens_on_first_use_not_at_construction(database_url: str) -> None:
    database = Database(database_url)
    assert not database.opened  # nothing connects until a request needs it (Lambda: not at import)
    database.ping()
    assert database.opened
    database.close()
    assert not database.opened
    database.ping()  # a closed Database opens a new pool for whoever still holds it
    database.close()


def test_numpy_arrays_are_sent_and_read_as_vectors(db: Database) -> None:
    with db.connection() as conn:
        row = conn.execute("SELECT %s::vector", (np.array([1.5, -2.0, 3.0], dtype=np.float32),)).fetchone()
    assert row is not None
    assert row[0].to_numpy().tolist() == [1.5, -2.0, 3.0]


def ping(database: Database) -> None:
    database.ping()


def aping(database: Database) -> None:
    """A read awaited in an event loop (Database.aread: its async connections)."""
    assert run_async(database.aread("SELECT 1")) == [(1,)]


@pytest.mark.parametrize("read", [ping, aping], ids=["sync", "async"])
def test_unreachable_database_is_a_503_error_not_a_hang(tmp_path, read: Callable[[Database], None]) -> None:
    database = Database(f"postgresql://postgres@/nowhere?host={tmp_path}", connect_timeout=1)
    with pytest.raises(DatabaseUnavailable):
        read(database)
    assert database.reads.size == 0
    database.close()


@pytest.mark.parametrize(
    ("read", "idle_check_seconds"),
    # async: no check before use, so the read itself meets the dead connection and drops the idle ones
    [(ping, 0), (aping, 3600)],
    ids=["sync", "async"],
)
def test_pool_recovers_after_the_database_restarts(
    tmp_path, read: Callable[[Database], None], idle_check_seconds: float
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", server_settings=EPHEMERAL_SERVER_SETTINGS)
    server.start()
    try:
        database = Database(
            server.url("postgres"), max_size=2, idle_check_seconds=idle_check_seconds, connect_timeout=2
        )
        read(database)

        server.stop()
        with pytest.raises(DatabaseUnavailable):
            read(database)

        server.start()
        read(database)  # no restart of the app: the pool replaced its dead connections
        assert database.reads.size <= 1
        database.close()
    finally:
        server.stop()


def test_settings_that_need_a_server_start_are_applied_by_start(tmp_path) -> None:
    settings = {**EPHEMERAL_SERVER_SETTINGS, "shared_buffers": "48MB", "work_mem": "7MB"}
    server = EmbeddedPostgres(tmp_path / "pg", server_settings=settings)
    server.start()
    try:
        with psycopg.connect(server.url("postgres")) as conn:
            assert conn.execute("SHOW shared_buffers").fetchone() == ("48MB",)  # postmaster-level
            assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)  # applied by a reload
    finally:
        server.stop()


def select_vector(database: Database, vector: np.ndarray) -> list[float]:
    with database.connection() as conn:
        row = conn.execute("SELECT %s::vector", (vector,)).fetchone()
    assert row is not None
    return list(row[0].to_numpy().tolist())


def aselect_vector(database: Database, vector: np.ndarray) -> list[float]:
    ((value,),) = run_async(database.aread("SELECT %s::vector", (vector,)))
    return list(value.to_numpy().tolist())


@pytest.mark.parametrize("select", [select_vector, aselect_vector], ids=["sync", "async"])
def test_a_vector_type_recreated_under_the_pool_is_a_503_then_works(
    postgres: EmbeddedPostgres, select: Callable[[Database, np.ndarray], list[float]]
) -> None:
    """An in-place restore (`pg_restore --clean`) drops and recreates the `vector` type under a new OID:
    connections that cached the old one fail. That is a 503 once, never a 500, and the pool starts over."""
    postgres.drop_database("retyped")
    url = postgres.ensure_database("retyped")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION vector")
    database = Database(url, max_size=2)
    vector = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    try:
        select(database, vector)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("DROP EXTENSION vector")
            admin.execute("CREATE EXTENSION vector")
        with pytest.raises(DatabaseUnavailable):
            select(database, vector)
        assert select(database, vector) == [1.0, 2.0, 3.0]
    finally:
        database.close()
        postgres.drop_database("retyped")
