"""Reads awaited in an event loop (`Database.aread`): the same rows, settings and faults as `read`, on async
connections that any event loop may use, and the sync pool on a thread when they are all busy. (An
unreachable server, a restart and a recreated `vector` type: tests/test_db_pool.py, for both kinds of
connection.)"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row
from support.live import run_async

from imagesearch.db import Database
from imagesearch.errors import DatabaseUnavailable

PID = "SELECT pg_backend_pid()"
SETTINGS = "SELECT current_setting('hnsw.ef_search', true), current_setting('statement_timeout')"


def aread(db: Database, query: str, params: Any = None, **kwargs: Any) -> list[Any]:
    """`db.aread` in an event loop of its own (each call a new one; the thread's loop left alone)."""
    return run_async(db.aread(query, params, **kwargs))


@pytest.fixture
def database(database_url: str) -> Any:
    db = Database(database_url, max_size=1, statement_timeout_ms=5000)
    yield db
    db.close()


def test_rows_and_vectors_are_those_of_read(database: Database) -> None:
    vector = np.array([1.5, -2.0, 3.0], dtype=np.float32)
    query = "SELECT %s::vector, %s::text, g FROM generate_series(1, 3) g"
    assert aread(database, query, (vector, "é ☃")) == database.read(query, (vector, "é ☃"))
    assert aread(database, query, (vector, "x"))[0][0].to_numpy().tolist() == [1.5, -2.0, 3.0]


def test_dict_rows_are_those_of_read_with_dict_row(database: Database) -> None:
    """The search path's rows: uuids, times, text arrays, floats and NULLs as dicts by column name."""
    query = (
        "SELECT gen_random_uuid() IS NOT NULL AS made, %s::uuid AS id, %s::timestamptz AS at, "
        "%s::text[] AS tags, %s::float8 AS score, NULL::text AS missing, g AS n FROM generate_series(1, 3) g"
    )
    params = ("5d249cd0-51d5-eb48-0000-000000001dcc", "2024-05-01T12:30:00+02:00", ["a b", "é"], 0.859405)
    rows = aread(database, query, params, dicts=True)
    assert rows == database.read(query, params, row_factory=dict_row)
    assert [row["n"] for row in rows] == [1, 2, 3]
    assert rows[0]["tags"] == ["a b", "é"] and rows[0]["missing"] is None
    assert aread(database, "SELECT 1 AS one, 2 AS two") == [(1, 2)]  # tuples unless asked


def test_rows_read_in_binary_hold_the_values_a_text_read_gives(database: Database) -> None:
    """aread takes its rows in binary (less work for both sides): every type a search returns, and the
    others a statement might add (facets as JSON, dates, decimals), loads to the value a text read gives."""
    query = (
        "SELECT %s::halfvec AS h, '{\"year\": {\"2024\": 3}}'::jsonb AS facets, '[1, 2.5]'::json AS j, "
        "DATE '2024-02-29' AS d, TIMESTAMP '2024-05-01 12:30:00.123456' AS local, 12.50::numeric AS n, "
        "true AS b, 2::int8 ^ 40 AS big, 9007199254740993::int8 AS exact, 'Infinity'::float8 AS inf, "
        "0.1::float8 AS tenth, interval '1 day 2 hours' AS span, 'é ☃'::varchar AS v, ''::text AS empty"
    )
    vector = np.array([0.5, -1.25], dtype=np.float32)
    rows = aread(database, query, (vector,), dicts=True)
    text = database.read(query, (vector,), row_factory=dict_row)
    assert rows[0].pop("h").to_list() == text[0].pop("h").to_list() == [0.5, -1.25]
    assert rows == text
    assert rows[0]["facets"] == {"year": {"2024": 3}} and rows[0]["tenth"] == 0.1


@pytest.mark.parametrize("settings", [None, {"hnsw.ef_search": "50"}], ids=["alone", "with settings"])
def test_an_error_is_reads_error_and_the_connection_serves_the_next_read(
    database: Database, settings: dict[str, str] | None
) -> None:
    """With or without settings in front of it (a pipeline, or the statement alone), a failing statement
    raises the error `read` raises, and leaves its connection in order for the next read."""
    first = aread(database, PID)
    for query, error in (
        ("SELECT 1 / %s", psycopg.errors.DivisionByZero),
        ("SELEC 1", psycopg.errors.SyntaxError),
    ):
        params = (0,) if "%s" in query else None
        with pytest.raises(error):
            database.read(query, params, settings=settings)
        with pytest.raises(error):
            aread(database, query, params, settings=settings)
        assert aread(database, PID, settings=settings) == first  # the same session, out of the pipeline
    (conn,) = database.reads.idle()
    assert conn.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF


def test_a_setting_the_server_refuses_fails_the_read_not_the_connection(database: Database) -> None:
    first = aread(database, PID)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        aread(database, "SELECT 1", settings={"work_mem": "-5"})
    assert aread(database, PID) == first


def test_a_read_cancelled_while_it_waits_closes_its_connection(database: Database) -> None:
    """A cancelled task leaves its connection mid-statement: it is closed, and the next read gets another."""

    async def cancelled() -> None:
        task = asyncio.ensure_future(database.aread("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    ((pid,),) = aread(database, PID)
    run_async(cancelled())
    assert database.reads.size == 0 and database.reads.idle() == []
    ((new_pid,),) = aread(database, PID)
    assert new_pid != pid


def test_a_connection_lost_inside_the_pipeline_is_unavailable_and_dropped(
    database: Database, database_url: str
) -> None:
    """The server ends the session while a read with settings waits in its pipeline: a 503, the
    connection closed and dropped, and the next read on a new one."""
    ((pid,),) = aread(database, PID)

    def terminate() -> None:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    timer = threading.Timer(0.5, terminate)
    timer.start()
    try:
        with pytest.raises(DatabaseUnavailable):
            aread(database, "SELECT pg_sleep(3)", settings={"hnsw.ef_search": "50"})
    finally:
        timer.join()
    assert database.reads.size == 0
    ((new_pid,),) = aread(database, PID, settings={"hnsw.ef_search": "50"})
    assert new_pid != pid


def test_settings_hold_for_the_statement_and_end_with_it(database: Database) -> None:
    rows = aread(database, SETTINGS, settings={"hnsw.ef_search": "123"})
    assert rows == [("123", "5s")]  # the pool's statement_timeout travels too
    ef_search, timeout = aread(database, SETTINGS)[0]
    assert ef_search in (None, "", "40")  # unset, an empty placeholder or pgvector's default: not 123
    assert timeout == "5s"  # sent again with each statement, never left in the session
    (conn,) = database.reads.idle()
    after = run_async(_session_timeout(conn))
    assert after != "5s"


async def _session_timeout(conn: psycopg.AsyncConnection) -> str:
    cursor = await conn.execute("SELECT current_setting('statement_timeout')")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


def test_one_connection_serves_one_event_loop_after_another(database: Database) -> None:
    first = aread(database, PID)
    assert aread(database, PID) == first  # a new loop, the same session: no reconnect per loop
    assert database.reads.size == 1
    with database.connection() as conn:  # the sync pool is another session
        assert conn.execute(PID).fetchall() != first


def test_without_async_reads_every_read_is_the_sync_pools(database_url: str) -> None:
    """IMAGESEARCH_DB_ASYNC_READS=false (Lambda): no connection besides the pool's one."""
    database = Database(database_url, max_size=1, async_reads=False)
    try:
        rows = aread(database, SETTINGS, settings={"hnsw.ef_search": "77"})
        assert rows[0][0] == "77"
        read_pid = aread(database, PID)
        with database.connection() as conn:
            assert read_pid == conn.execute(PID).fetchall()  # the pool's one connection
        assert database.reads.size == 0
    finally:
        database.close()


def test_busy_connections_send_the_read_to_the_sync_pool(database: Database) -> None:
    async def while_held() -> tuple[list[Any], list[Any]]:
        async with database.reads.connection() as held:
            assert held is not None
            cursor = await held.execute(PID)
            held_pid = await cursor.fetchall()
            return held_pid, await database.aread(PID)  # max_size 1: this one cannot wait for it

    held_pid, read_pid = run_async(while_held())
    with database.connection() as conn:
        sync_pid = conn.execute(PID).fetchall()
    assert read_pid != held_pid
    assert read_pid == sync_pid  # read on the sync pool's connection
    assert database.reads.size == 1


def test_a_statement_timeout_is_unavailable_and_the_connection_stays(database_url: str) -> None:
    database = Database(database_url, max_size=1, statement_timeout_ms=100)
    try:
        first = aread(database, PID)
        with pytest.raises(DatabaseUnavailable):
            aread(database, "SELECT pg_sleep(2)")
        assert aread(database, PID) == first  # cancelled, not broken: kept
    finally:
        database.close()


def test_a_connection_that_died_while_idle_is_replaced_before_use(database_url: str) -> None:
    database = Database(database_url, max_size=1, idle_check_seconds=0)
    try:
        ((pid,),) = aread(database, PID)
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ((new_pid,),) = aread(database, PID)  # checked before use (idle past 0 s): no error
        assert new_pid != pid
        assert database.reads.size == 1
    finally:
        database.close()


def test_close_ends_idle_connections_and_held_ones_when_they_come_back(database_url: str) -> None:
    database = Database(database_url, max_size=2)

    async def scenario() -> tuple[psycopg.AsyncConnection, psycopg.AsyncConnection]:
        await database.aread(PID)
        (idle,) = database.reads.idle()
        async with database.reads.connection() as held:
            assert held is idle
            async with database.reads.connection() as second:
                assert second is not None and second is not held
            database.close()
            assert second.closed and database.reads.size == 1
            assert held is not None and not held.closed  # in use: closed when it comes back
        return held, second

    held, second = run_async(scenario())
    assert held.closed and database.reads.size == 0
    assert aread(database, "SELECT 1") == [(1,)]  # a closed Database serves on new connections
    database.close()
