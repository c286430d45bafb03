"""Database.read sends a statement's settings and the statement in one implicit transaction (no BEGIN or
COMMIT): the settings hold for that statement alone, and the connection is left as it was."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import psycopg
import pytest

from imagesearch.db import Database
from imagesearch.errors import DatabaseUnavailable


@pytest.fixture
def single(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=1, statement_timeout_ms=5_000)
    yield database
    database.close()


def test_the_settings_hold_for_the_statement_alone(single: Database) -> None:
    rows = single.read(
        "SELECT current_setting('hnsw.ef_search'), current_setting('statement_timeout')",
        settings={"hnsw.ef_search": "77"},
    )
    assert rows == [("77", "5s")]
    after = single.read("SELECT current_setting('hnsw.ef_search', true)", settings={})
    assert after[0][0] != "77"
    with single.connection() as conn:  # the session itself never had them
        conn.execute("COMMIT")
        assert conn.execute("SHOW statement_timeout").fetchone() != ("5s",)
        conn.execute("BEGIN")


def test_the_pipeline_has_no_begin_or_commit(single: Database) -> None:
    single.read("SELECT 1", settings={"hnsw.ef_search": "77"})  # the connection, configured
    with single.connection() as conn:
        pgconn = conn.pgconn
    with tempfile.NamedTemporaryFile("w+") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        single.read("SELECT 2", settings={"hnsw.ef_search": "77"})
        pgconn.untrace()
        out.seek(0)
        trace = out.read()
    parses = [line for line in trace.splitlines() if line.startswith("F") and "\tParse\t" in line]
    assert len(parses) == 2, trace  # set_config, the statement
    assert "BEGIN" not in trace and "COMMIT" not in trace
    assert sum(1 for line in trace.splitlines() if "\tSync" in line) == 1


def test_an_error_leaves_the_connection_idle_and_usable(single: Database) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        single.read("SELECT 1 / 0", settings={"hnsw.ef_search": "77"})
    assert single.read("SELECT 2", settings={"hnsw.ef_search": "77"}) == [(2,)]
    with single.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS  # its own BEGIN


def test_the_statement_timeout_holds(database_url: str) -> None:
    quick = Database(database_url, max_size=1, statement_timeout_ms=100)
    try:
        with pytest.raises(DatabaseUnavailable):
            quick.read("SELECT pg_sleep(2)", settings={"hnsw.ef_search": "77"})
        assert quick.read("SELECT 3") == [(3,)]
    finally:
        quick.close()
