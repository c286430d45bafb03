"""One read-only statement on an async connection, driven through libpq directly (`Database.aread`).

psycopg's async cursor is general: a cursor object, a prepare manager, pipeline bookkeeping that flushes
the socket after every command, and a wait loop that arms a timer for every wait. On the search path all
of that was a third of a request's Python (docs/search.md, "The read under the cursor"). `fetch` keeps what
a search needs and nothing else, with psycopg's own pieces where they do the work: its query conversion
and parameter dumpers (the C Transformer, with pgvector's adapters), its row loaders, its error classes.

- Settings that travel with the statement (`set_config`, bytes with no parameters) go in one libpq
  pipeline with it, ended by one Sync and sent in one write; with none, the statement goes alone.
- Rows come back as tuples or as dicts keyed by column name, the same values a cursor gives. The server
  sends them in binary (`result_format`): no text to print for PostgreSQL, none to parse here, for the
  same values (a `real` would be the exception, its float32 value and not its shortest decimal: the
  search statement returns none; tests/test_db_aread.py checks the types it does return).
- An error result raises the same psycopg error a cursor raises (QueryCanceled for a statement timeout,
  InternalError_ for a type that changed); a broken socket raises OperationalError from libpq. A read
  interrupted while it waits (a cancelled task), or one that fails inside the pipeline (a connection lost
  mid-read), closes the connection: it is in the middle of a statement, and its pool drops it when it
  comes back closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg._queries import PostgresQuery  # the cursor's conversion: placeholders, parameter dumping
from psycopg.abc import Params, Query
from psycopg.adapt import Transformer

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_BINARY = pq.Format.BINARY
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_PIPELINE_ABORTED = pq.ExecStatus.PIPELINE_ABORTED
_INTERRUPTED = (asyncio.CancelledError, KeyboardInterrupt, SystemExit)


async def fetch(
    conn: psycopg.AsyncConnection,
    query: Query,
    params: Params | None,
    *,
    set_config: bytes | None = None,
    dicts: bool = False,
) -> list[Any]:
    """The rows of `query` with `params` on `conn` (autocommit, held by the caller alone), after
    `set_config` in the same round trip when given; dicts keyed by column name when `dicts`."""
    tx = Transformer.from_context(conn)
    pgq = PostgresQuery(tx)
    pgq.convert(query, params)
    pgconn = conn.pgconn
    loop = asyncio.get_running_loop()
    try:
        if set_config is None:
            pgconn.send_query_params(pgq.query, pgq.params, pgq.types, pgq.formats, result_format=_BINARY)
            await _flush(pgconn, loop)
            results = await _results(pgconn, loop)
        else:
            pgconn.enter_pipeline_mode()
            pgconn.send_query_params(set_config, None)
            pgconn.send_query_params(pgq.query, pgq.params, pgq.types, pgq.formats, result_format=_BINARY)
            pgconn.pipeline_sync()
            await _flush(pgconn, loop)
            results = await _pipeline_results(pgconn, loop)
            pgconn.exit_pipeline_mode()
    except BaseException as e:
        # Interrupted mid-statement, or failed inside the pipeline: nothing can use this connection again
        # (its pool drops it closed). A failure outside the pipeline left it broken already, or unused.
        if isinstance(e, _INTERRUPTED) or pgconn.pipeline_status != pq.PipelineStatus.OFF:
            pgconn.finish()
        raise
    encoding = tx.encoding
    for res in results:
        if res.status == _FATAL_ERROR:
            raise errors.error_from_result(res, encoding=encoding)
    res = results[-1]
    if res.status != _TUPLES_OK:
        raise psycopg.ProgrammingError(f"the statement returned no rows ({pq.ExecStatus(res.status).name})")
    tx.set_pgresult(res)
    make_row: Callable[[Any], Any] = tuple
    if dicts:
        names = [(res.fname(i) or b"").decode(encoding) for i in range(res.nfields)]
        make_row = lambda values: dict(zip(names, values, strict=True))  # noqa: E731
    return tx.load_rows(0, res.ntuples, make_row)


async def _flush(pgconn: pq.abc.PGconn, loop: asyncio.AbstractEventLoop) -> None:
    """Send what libpq holds for the server (one write, unless the socket's buffer is full)."""
    while pgconn.flush():
        await _ready(loop, pgconn.socket, write=True)


async def _results(pgconn: pq.abc.PGconn, loop: asyncio.AbstractEventLoop) -> list[pq.abc.PGresult]:
    """The results of one statement, up to libpq's end of them."""
    results = []
    while (res := await _next(pgconn, loop)) is not None:
        results.append(res)
    return results


async def _pipeline_results(pgconn: pq.abc.PGconn, loop: asyncio.AbstractEventLoop) -> list[pq.abc.PGresult]:
    """The results of every statement before the pipeline's Sync, the aborted ones left out."""
    results: list[pq.abc.PGresult] = []
    while True:
        res = await _next(pgconn, loop)
        if res is None:
            continue  # the end of one statement's results
        if res.status == _PIPELINE_SYNC:
            return results
        if res.status != _PIPELINE_ABORTED:
            results.append(res)


async def _next(pgconn: pq.abc.PGconn, loop: asyncio.AbstractEventLoop) -> pq.abc.PGresult | None:
    """libpq's next result, once the server has sent it whole."""
    while pgconn.is_busy():
        await _ready(loop, pgconn.socket, write=False)
        pgconn.consume_input()
    return pgconn.get_result()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    """Until `fd` can be read (or written), without a thread."""
    waiter = loop.create_future()
    if write:
        loop.add_writer(fd, _wake, waiter)
    else:
        loop.add_reader(fd, _wake, waiter)
    try:
        await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
