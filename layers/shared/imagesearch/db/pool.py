"""A connection pool that suits Lambda as well as a long-running server."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from time import monotonic
from typing import Any

import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector, register_vector_async
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import RowFactory, dict_row

from imagesearch.concurrency import in_thread
from imagesearch.config import Settings
from imagesearch.db import wire
from imagesearch.db.aio import AsyncReads
from imagesearch.db.credentials import (
    ConnectionSource,
    connect_async,
    connection_source,
    retrying_connection_class,
)
from imagesearch.db.migrate import SCHEMA_REVISION
from imagesearch.errors import DatabaseUnavailable, SchemaOutdated
from imagesearch.logs import logger

# An iterative scan stops after this many tuples when filters leave few matches (pgvector's default).
HNSW_MAX_SCAN_TUPLES = 20_000
# The settings a query may carry (`Database.read`): pgvector's query-time knobs.
QUERY_SETTINGS = ("hnsw.ef_search", "hnsw.iterative_scan", "hnsw.max_scan_tuples")
STATEMENT_TIMEOUT = "statement_timeout"
# What a new session starts with for those settings and for statement_timeout (`Database._configure`).
_SESSION_VALUES = (
    "SELECT "
    + ", ".join("current_setting(%s, true)" for _ in QUERY_SETTINGS)
    + ", (SELECT setting FROM pg_settings WHERE name = 'statement_timeout')"
)
_SCHEMA_REVISION = (
    "SELECT CASE WHEN to_regclass('alembic_version') IS NULL THEN NULL "
    "ELSE (SELECT max(version_num) FROM alembic_version) END"
)
_IDLE = psycopg.pq.TransactionStatus.IDLE
_MISSING_VECTOR = "the vector extension is missing: run `imagesearch migrate`"


class _IdleCheck:
    """Ping a connection before use only when it sat idle long enough to have died (e.g. a Lambda freeze).

    Pinging on every checkout costs a round trip per request; most checkouts follow a return by milliseconds.
    """

    def __init__(self, max_idle_seconds: float) -> None:
        self._max_idle = max_idle_seconds
        self._returned_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()

    def check(self, conn: psycopg.Connection) -> None:
        returned_at = self._returned_at.get(conn)
        if returned_at is None or monotonic() - returned_at >= self._max_idle:
            psycopg_pool.ConnectionPool.check_connection(conn)

    def reset(self, conn: psycopg.Connection) -> None:
        self._returned_at[conn] = monotonic()


class Database:
    """A small pool over one PostgreSQL URL, opened on first use (never at import or in an ASGI lifespan)."""

    def __init__(
        self,
        url: str | ConnectionSource,
        *,
        min_size: int = 0,
        max_size: int = 2,
        idle_check_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 15_000,
        async_reads: bool = True,
        name: str = "imagesearch",
        required_schema: str | None = None,
    ) -> None:
        self._source = url if isinstance(url, ConnectionSource) else ConnectionSource.plain(url)
        self._statement_timeout_ms = statement_timeout_ms
        # Checked on the first connection, and again on every later one until it passes (a migration that
        # runs after the deploy is picked up without a restart).
        self._required_schema = required_schema
        # Keyed by connection, sync or async.
        self._session_values: weakref.WeakKeyDictionary[Any, dict[str, str | None]] = (
            weakref.WeakKeyDictionary()
        )
        self._idle = _IdleCheck(idle_check_seconds)
        self._set_config_statements: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._lock = threading.Lock()
        self._pool_args: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "name": name,
            "connect_kwargs": {
                "connect_timeout": max(1, round(connect_timeout)),
                "application_name": name,
                # Never a server-side prepared statement: PostgreSQL would switch a search to a generic
                # plan after five runs (6x slower for a small tenant), and a transaction-pooling proxy
                # cannot follow named statements across its server connections. Unnamed statements are
                # planned for their own values every time.
                "prepare_threshold": None,
            },
            "timeout": connect_timeout,
        }
        self._pool: psycopg_pool.ConnectionPool | None = None
        # Reads awaited in an event loop (`aread`): as many connections again as the sync pool, at most;
        # none without `async_reads` (every `aread` is then `read` on a worker thread).
        self._reads = AsyncReads(
            self._connect_async, max_size=max_size if async_reads else 0, max_idle_seconds=idle_check_seconds
        )

    @property
    def reads(self) -> AsyncReads:
        """The async connections of `aread`."""
        return self._reads

    @property
    def url(self) -> str:
        """The URL new connections use (a secret's, read on first use)."""
        return self._source.url()

    def _connect_kwargs(self) -> dict[str, Any]:
        """Each new connection's keyword arguments: the pool's, and an IAM token when the source makes one."""
        return {**self._pool_args["connect_kwargs"], **self._source.connect_kwargs()}

    def _configure(self, conn: psycopg.Connection) -> None:
        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            # Not migrated yet: a pool that refuses every connection would only say "unavailable".
            logger.warning(_MISSING_VECTOR)
            conn.rollback()
        # What the session starts with (role, database or server defaults) for the settings a query may
        # carry and for statement_timeout: only those that differ are sent, with each transaction (`read`,
        # `connection`). Read, never SET: no session state that a transaction-pooling proxy (RDS Proxy,
        # PgBouncer) would have to pin, or would leak to another client's transaction.
        self._remember_session(conn, conn.execute(_SESSION_VALUES, QUERY_SETTINGS).fetchone())
        conn.commit()
        # Statements run on their own (one round trip each); `connection` opens a transaction around its
        # block, `read` none.
        conn.autocommit = True

    async def _connect_async(self) -> psycopg.AsyncConnection:
        """A new connection for `aread`, made and set up as `_configure` sets up the sync pool's."""
        conn = await connect_async(self._source, self._pool_args["connect_kwargs"])
        try:
            try:
                await register_vector_async(conn)
            except psycopg.ProgrammingError:
                logger.warning(_MISSING_VECTOR)
                await conn.rollback()
            cursor = await conn.execute(_SESSION_VALUES, QUERY_SETTINGS)
            self._remember_session(conn, await cursor.fetchone())
            await conn.commit()
            await conn.set_autocommit(True)
        except BaseException:
            conn.pgconn.finish()
            raise
        return conn

    def _remember_session(self, conn: Any, row: tuple[Any, ...] | None) -> None:
        values = dict(zip(QUERY_SETTINGS, row or (), strict=False))
        values[STATEMENT_TIMEOUT] = row[-1] if row else None
        self._session_values[conn] = values

    def _open_pool(self) -> psycopg_pool.ConnectionPool:
        """The pool, opened on first use; after close() a new one (holders of this object keep working)."""
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    source = self._source
                    source.url()  # a secret that cannot be read fails this request, not the pool's worker
                    args = {k: v for k, v in self._pool_args.items() if k != "connect_kwargs"}
                    pool = psycopg_pool.ConnectionPool(
                        source.url,
                        kwargs=self._connect_kwargs,
                        connection_class=retrying_connection_class(source),
                        open=False,
                        configure=self._configure,
                        # No `reset=`: with one, psycopg_pool hands every returned connection to its
                        # worker thread (a thread wake-up per request); `_connection` stamps it instead.
                        check=self._idle.check,
                        num_workers=1,
                        **args,
                    )
                    pool.open(wait=False)
                    self._pool = pool
        return pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection inside a transaction: committed on success, rolled back on error.

        The transaction starts with its statement_timeout when the session's default differs, in the
        same round trip as BEGIN (one simple query)."""
        with self._connection() as conn:
            timeout = self._changed(conn, None).get(STATEMENT_TIMEOUT)
            begin = (
                "BEGIN"
                if timeout is None
                else f"BEGIN; SELECT set_config('statement_timeout', '{timeout}', true)"
            )
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                if not conn.closed and conn.pgconn.transaction_status != _IDLE:
                    with suppress(psycopg.Error):  # a broken connection: the pool discards it
                        conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _changed(self, conn: Any, settings: Mapping[str, str] | None) -> dict[str, str]:
        """`settings` plus this pool's statement_timeout, less those the session already starts with."""
        known = self._session_values.get(conn, {})
        wanted = {**(settings or {}), STATEMENT_TIMEOUT: str(int(self._statement_timeout_ms))}
        return {name: value for name, value in wanted.items() if known.get(name) != value}

    def read(
        self,
        query: str | bytes | sql.SQL | sql.Composed,
        params: Params | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        row_factory: RowFactory[Any] | None = None,
    ) -> list[Any]:
        """The rows of one read-only statement, in one network round trip.

        `settings` (and this pool's statement_timeout) hold for this statement only. Those the session does
        not start with travel with it: set_config(..., true) (SET LOCAL) and the statement, pipelined into
        one round trip and ended by one Sync. Messages up to a Sync are one implicit transaction, which the
        Sync commits (or, after an error, rolls back), so no BEGIN or COMMIT is sent: two statements fewer
        for psycopg to send and read back (docs/search.md, "Where a search's CPU goes"). So a connection
        never carries state that a transaction-pooling proxy would have to pin."""
        with self._connection() as conn:
            changed = self._changed(conn, settings)
            cursor = conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()
            with cursor as cur:
                if not changed:
                    cur.execute(query, params)
                    return cur.fetchall()
                try:
                    with conn.pipeline():
                        cur.execute(self._set_config(conn, changed))
                        cur.execute(query, params)
                finally:
                    if conn.pgconn.transaction_status != _IDLE:
                        conn.execute("ROLLBACK")  # not expected after the Sync; never leave one open
                return cur.fetchall()

    async def aread(
        self,
        query: str | bytes | sql.SQL | sql.Composed,
        params: Params | None = None,
        *,
        settings: Mapping[str, str] | None = None,
        dicts: bool = False,
    ) -> list[Any]:
        """`read`, awaited in the caller's event loop on an async connection: no worker thread carries the
        statement (db/aio.py says why), and no cursor either (db/wire.py). The same single round trip,
        settings, values and faults; rows as tuples, or as dicts keyed by column name when `dicts` (`read`
        with `row_factory=dict_row`). When every async connection is busy, `read` on a worker thread."""
        reads = self._reads
        try:
            conn = await reads.checkout()
            if conn is None:
                read = functools.partial(
                    self.read, query, params, settings=settings, row_factory=dict_row if dicts else None
                )
                return await in_thread(read)
            try:
                if self._required_schema is not None:
                    cursor = await conn.execute(_SCHEMA_REVISION)
                    self._schema_checked((await cursor.fetchone() or (None,))[0], self._required_schema)
                changed = self._changed(conn, settings)
                set_config = self._set_config(conn, changed) if changed else None
                try:
                    return await wire.fetch(conn, query, params, set_config=set_config, dicts=dicts)
                finally:
                    if not conn.closed and conn.pgconn.transaction_status != _IDLE:
                        await conn.execute("ROLLBACK")  # as in `read`
            finally:
                reads.release(conn)
        except (psycopg.OperationalError, psycopg.errors.InternalError_) as e:
            fault = self._fault(e, self._reads.discard_idle)
            if fault is e:
                raise
            raise fault from e

    def _set_config(self, conn: Any, changed: Mapping[str, str]) -> bytes:
        """`SELECT set_config(name, value, true), ...` for `changed`, its values quoted as literals: the
        same few combinations every time (the strategies' settings), so each is composed once and psycopg
        has no parameters to convert and send (about 50 us a read)."""
        key = tuple(changed.items())
        statement = self._set_config_statements.get(key)
        if statement is None:
            composed = sql.SQL("SELECT {}").format(
                sql.SQL(", ").join(
                    sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
                    for name, value in key
                )
            )
            statement = composed.as_bytes(conn)
            if len(self._set_config_statements) < 64:  # settings come from configuration, never requests
                self._set_config_statements[key] = statement
        return statement

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection (autocommit); the database's faults as DatabaseUnavailable."""
        pool = self._open_pool()
        try:
            with pool.connection() as conn:
                try:
                    if self._required_schema is not None:
                        self._check_schema(conn, self._required_schema)
                    yield conn
                finally:
                    self._idle.reset(conn)  # returned now: the idle check counts from here
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.errors.InternalError_) as e:
            fault = self._fault(e, pool.check)
            if fault is e:
                raise
            raise fault from e

    def _fault(self, error: Exception, discard_idle: Callable[[], None]) -> Exception:
        """What a read that failed with `error` raises: DatabaseUnavailable for the database's faults (after
        `discard_idle` when the server went away), `error` itself for the rest."""
        if isinstance(error, psycopg.errors.InternalError_):
            if "cache lookup failed for type" not in str(error):
                return error
            # A type this pool's connections know by OID was dropped and made again (an in-place restore,
            # `pg_restore --clean`, recreates `vector`): start over with connections that look it up anew.
            logger.warning(
                "a database type changed under the pool: reconnecting", extra={"error": str(error)}
            )
            self.close()
            return DatabaseUnavailable("the database schema changed, please retry")
        if not isinstance(error, psycopg.errors.QueryCanceled):
            # After a database restart every idle connection is dead: drop them all now rather than failing
            # one request per stale connection.
            discard_idle()
        # QueryCanceled (statement_timeout) is an OperationalError too: a 503 is right for it as well.
        return DatabaseUnavailable("the database is unavailable, please retry")

    def _check_schema(self, conn: psycopg.Connection, required: str) -> None:
        """SchemaOutdated unless the database is migrated at least to `required` (revisions are numbered)."""
        row = conn.execute(_SCHEMA_REVISION).fetchone()
        self._schema_checked(row[0] if row else None, required)

    def _schema_checked(self, current: str | None, required: str) -> None:
        if current is not None and current >= required:
            self._required_schema = None
            return
        logger.error(
            "the database schema is older than this code needs: run `imagesearch migrate` (or the deploy's "
            "migration) before this code serves",
            extra={"schema": current, "required": required},
        )
        raise SchemaOutdated(
            f"the database schema is at {current or 'nothing'}; this version needs {required}: "
            "run the migrations"
        )

    @property
    def opened(self) -> bool:
        return self._pool is not None

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds."""
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Close the pool's connections; the next use opens a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        self._reads.close()
        if pool is not None:
            pool.close()


def hnsw_settings(ef_search: int) -> dict[str, str]:
    """pgvector's query-time settings: ef_search (never below the candidates wanted) and iterative scans,
    which keep a filtered HNSW scan going until enough rows pass the filter (re-ordered in the query)."""
    return {
        "hnsw.ef_search": str(ef_search),
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.max_scan_tuples": str(HNSW_MAX_SCAN_TUPLES),
    }


def database_from_settings(settings: Settings, *, role: str = "primary") -> Database:
    """The pool of `role` (primary, replica), sized and limited by the settings; for the replica, the
    primary's when no replica is configured is the caller's choice (see `has_replica`)."""
    source = connection_source(settings, role=role)
    if source is None:
        raise DatabaseUnavailable(f"no {role} database is configured")
    return Database(
        source,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        idle_check_seconds=settings.db_idle_check_seconds,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        async_reads=settings.db_async_reads,
        name=f"imagesearch-{role}",
        required_schema=SCHEMA_REVISION,
    )


def has_replica(settings: Settings) -> bool:
    """Whether the search path has a replica of its own (a URL or a secret)."""
    return settings.database_replica_url is not None or settings.database_replica_secret_arn is not None
