"""How a search reaches PostgreSQL: one network round trip, planned for its own values, no session state.

A transaction-pooling proxy (RDS Proxy, PgBouncer) hands each transaction to any server connection, so a
search must not rely on what an earlier one left in the session (`SET`, named prepared statements), and
PostgreSQL must never switch it to a generic plan (after five runs of a prepared statement it may: a small
tenant's search then costs several times more)."""

from __future__ import annotations

import tempfile
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from support.gallery import AddImages
from support.live import run_async

from imagesearch.db import Database
from imagesearch.runtime import get_runtime

COLORS = ["red", "green", "blue", "yellow", "white", "black"]


@pytest.fixture
def one_connection(database_url: str, add_images: AddImages, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A small gallery, and the search service on a pool of exactly one connection (the one we watch)."""
    add_images(*({"name": c, "color": c, "shape": "circle", "title": f"{c} circle"} for c in COLORS))
    single = Database(database_url, max_size=1)
    monkeypatch.setattr(get_runtime().search, "db", single)
    return single


def round_trips(trace: str) -> int:
    """Times the client sent and then waited for the server, from a libpq protocol trace."""
    trips, last = 0, None
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        if direction not in ("F", "B"):
            continue  # a message's text goes on over several lines
        if direction == "F" and last != "F":
            trips += 1
        last = direction
    return trips


@pytest.mark.parametrize(
    "body",
    [
        {"query": "red circle", "mode": "vector"},
        {"query": "red circle", "mode": "hybrid"},
        {"query": "red circle", "mode": "keyword"},
        {"query": "red circle", "mode": "hybrid", "filters": {"tags": ["x"], "tags_mode": "any"}},
    ],
    ids=["vector", "hybrid", "keyword", "filtered"],
)
def test_a_search_is_one_round_trip(
    client: TestClient, one_connection: Database, body: dict[str, object]
) -> None:
    client.post("/search", json=body)  # warm: the model record, the query vector, the connection
    (conn,) = one_connection.reads.idle()  # POST /search reads on the event loop (Database.aread)
    pgconn = conn.pgconn
    with tempfile.NamedTemporaryFile("w+") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        response = client.post("/search", json=body)
        pgconn.untrace()
        out.seek(0)
        trace = out.read()
    assert response.status_code == 200, response.text
    assert round_trips(trace) == 1, trace
    assert "\tQuery\t" not in trace  # no BEGIN or COMMIT of its own: everything in one pipelined flush


def test_searches_leave_no_prepared_statement_and_no_session_setting(
    client: TestClient, one_connection: Database
) -> None:
    for i in range(30):
        body = {"query": f"{COLORS[i % 6]} circle", "mode": ["vector", "hybrid"][i % 2]}
        assert client.post("/search", json=body).status_code == 200
    (conn,) = one_connection.reads.idle()  # the session every search read on (Database.aread)
    prepared, ef_search = run_async(_session_state(conn))
    assert prepared == []  # every search planned for its own values, never as a generic plan
    # SET LOCAL ended with each search: the session is as it started (pgvector's default, or unset).
    assert ef_search in (None, "", "40")


async def _session_state(conn: psycopg.AsyncConnection) -> tuple[list[Any], str | None]:
    """The session's prepared statements and its hnsw.ef_search."""
    prepared = await (await conn.execute("SELECT name, generic_plans FROM pg_prepared_statements")).fetchall()
    row = await (await conn.execute("SELECT current_setting('hnsw.ef_search', true)")).fetchone()
    return prepared, row[0] if row else None


def test_settings_travel_with_the_statement_and_end_with_it(one_connection: Database) -> None:
    settings = {"hnsw.ef_search": "123", "hnsw.iterative_scan": "relaxed_order"}
    rows = one_connection.read(
        "SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')", settings=settings
    )
    assert rows == [("123", "relaxed_order")]
    after = one_connection.read("SELECT current_setting('hnsw.ef_search', true)")
    assert after[0][0] in (None, "", "40")  # unset, an empty placeholder, or pgvector's default
