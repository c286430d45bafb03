"""Async connections for reads awaited in the caller's event loop, with no worker thread (`Database.aread`).

A sync read from an async route runs on a worker thread: the event loop hands the request to the thread and
the thread hands the rows back, two cross-thread wake-ups that cost about 0.2 ms of CPU a request on this
machine, more than the rest of the HTTP layer (docs/search.md, "Reads on the event loop"). `AsyncReads`
keeps a few `psycopg.AsyncConnection`s beside the Database's sync pool, and a read awaits its statement on
one of them in whichever event loop calls it.

It is small on purpose, not psycopg_pool's AsyncConnectionPool. That pool belongs to the event loop it
was opened in (its workers are tasks of that loop), and an app may be called from several loops in turn:
a test client opens one per request, Mangum keeps one for the container's life. A connection here is
held by one caller at a time and by nothing else, so it works in any loop that awaits it. Nothing waits
for a connection here: when all `max_size` are busy, `connection()` yields None and the caller reads
through the sync pool on a thread, which waits with its timeout. A connection idle for `max_idle_seconds`
or longer (a Lambda freeze, a proxy's idle timeout) is checked with an empty statement before use.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import monotonic

import psycopg
import psycopg_pool


class AsyncReads:
    """Up to `max_size` async connections made by `connect`, the idle ones kept for the next read."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection]],
        *,
        max_size: int,
        max_idle_seconds: float,
    ) -> None:
        self._connect = connect
        self._max_size = max_size
        self._max_idle = max_idle_seconds
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []  # the last returned last
        self._size = 0  # idle, held and being made
        self._generation = 0  # close() retires every connection made before it
        self._made_in: weakref.WeakKeyDictionary[psycopg.AsyncConnection, int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # event loops in different threads may share this object

    @property
    def size(self) -> int:
        """Connections open or being made (idle and held)."""
        return self._size

    def idle(self) -> list[psycopg.AsyncConnection]:
        """The idle connections, the next to be used first (for diagnostics and tests)."""
        with self._lock:
            return [conn for conn, _ in reversed(self._idle)]

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection | None]:
        """A connection for one read (None when all are busy); kept for the next read when it comes back idle
        and in good order, closed otherwise."""
        conn = await self.checkout()
        if conn is None:
            yield None
            return
        try:
            yield conn
        finally:
            self.release(conn)

    def discard_idle(self) -> None:
        """Close the idle connections (after a read found the server gone: they are most likely dead too)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._size -= len(idle)
        for conn, _ in idle:
            _finish(conn)

    def close(self) -> None:
        """Close the idle connections now and the held ones when they come back."""
        with self._lock:
            self._generation += 1
        self.discard_idle()

    async def checkout(self) -> psycopg.AsyncConnection | None:
        """`connection()` without a context manager (the search path's read): `release` it after use."""
        while True:
            with self._lock:
                if self._idle:
                    conn, returned_at = self._idle.pop()
                elif self._size < self._max_size:
                    self._size += 1
                    conn, returned_at = None, None
                else:
                    return None
                generation = self._generation
            if conn is None:
                try:
                    conn = await self._connect()
                except BaseException:
                    with self._lock:
                        self._size -= 1
                    raise
                with self._lock:
                    self._made_in[conn] = generation
                return conn
            if returned_at is not None and monotonic() - returned_at < self._max_idle:
                return conn
            try:
                await psycopg_pool.AsyncConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._drop(conn)  # dead while idle: try the next one, or a new one
                continue
            return conn

    def release(self, conn: psycopg.AsyncConnection) -> None:
        """Back from a `checkout`: kept for the next read when idle and in good order, closed otherwise."""
        with self._lock:
            if (
                not conn.closed
                and conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
                and self._made_in.get(conn) == self._generation
            ):
                self._idle.append((conn, monotonic()))
                return
        self._drop(conn)

    def _drop(self, conn: psycopg.AsyncConnection) -> None:
        with self._lock:
            self._size -= 1
        _finish(conn)


def _finish(conn: psycopg.AsyncConnection) -> None:
    """Close `conn` without an event loop: libpq closes the socket (the server ends the session)."""
    conn.pgconn.finish()
