"""PgBouncer in transaction pooling mode in front of a PostgreSQL: the local stand-in for RDS Proxy.

Debian's `pgbouncer` (apt-get install pgbouncer). In transaction mode a client holds a server connection
only for the length of one transaction, so session state (SET, set_config(..., false), named prepared
statements, session advisory locks) leaks to other clients or is lost: the code must carry none, and the
tests that pass through this prove it does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from imagesearch.logs import logger

PGBOUNCER = "pgbouncer"
INSTALL_HINT = "PgBouncer is not installed: apt-get install pgbouncer (Debian), or brew install pgbouncer"


class PgBouncerError(RuntimeError):
    """PgBouncer is missing, or it did not start (the message holds the end of its log)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _upstream(url: str) -> tuple[str, int, str]:
    """(host or socket directory, port, user) of a libpq URL such as the embedded server's
    postgresql://postgres:@/postgres?host=/path/to/data."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    host = (query.get("host") or [parsed.hostname or "127.0.0.1"])[0]
    port = int((query.get("port") or [str(parsed.port or 5432)])[0])
    return host, port, parsed.username or "postgres"


@dataclass
class PgBouncer:
    """A PgBouncer process (transaction pooling) forwarding every database name to `upstream_url`'s server.

    `pool_size` server connections per database and user at most, `max_db_connections` in all per database
    (0: no cap besides pool_size); clients beyond them wait in PgBouncer's queue, up to `query_wait_timeout`
    seconds, as RDS Proxy's ConnectionBorrowTimeout makes them wait."""

    upstream_url: str
    pool_size: int = 20
    max_db_connections: int = 0
    max_client_conn: int = 2000
    query_wait_timeout: int = 30
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _workdir: Path | None = field(default=None, repr=False)

    def start(self, timeout: float = 15.0) -> None:
        executable = shutil.which(PGBOUNCER) or next(
            (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
        )
        if executable is None:
            raise PgBouncerError(INSTALL_HINT)
        host, port, user = _upstream(self.upstream_url)
        self.user = user
        self.port = self.port or _free_port()
        # Its configuration and log in a directory of their own, which PgBouncer's user can reach.
        workdir = self._workdir = Path(tempfile.mkdtemp(prefix="imagesearch-pgbouncer-"))
        ini, log = workdir / "pgbouncer.ini", workdir / "pgbouncer.log"
        (workdir / "userlist.txt").write_text(f'"{user}" ""\n', "utf-8")
        ini.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={host} port={port} user={user}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {workdir / 'userlist.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {self.pool_size}",
                    f"max_db_connections = {self.max_db_connections}",
                    f"max_client_conn = {self.max_client_conn}",
                    f"query_wait_timeout = {self.query_wait_timeout}",
                    # What psycopg and SQLAlchemy may send at startup that PgBouncer does not track itself.
                    "ignore_startup_parameters = extra_float_digits,options",
                    f"logfile = {log}",
                    "log_connections = 0",
                    "log_disconnections = 0",
                    "",
                ]
            ),
            "utf-8",
        )
        command = [executable, str(ini)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; the embedded server's socket belongs to its own user.
            owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name if Path(host).is_dir() else "postgres"
            shutil.chown(workdir, owner)
            for path in workdir.iterdir():
                shutil.chown(path, owner)
            command = [executable, "-u", owner, str(ini)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    logger.info("pgbouncer started", extra={"port": self.port, "pool_size": self.pool_size})
                    return
            except OSError:
                time.sleep(0.05)
        stderr = b""
        if self._process.poll() is not None and self._process.stderr is not None:
            stderr = self._process.stderr.read()
        tail = log.read_text("utf-8", "replace")[-2000:] if log.exists() else ""
        self.stop()
        raise PgBouncerError(f"pgbouncer did not start: {stderr.decode(errors='replace')}{tail}")

    def url(self, database: str) -> str:
        """A libpq URL for `database` through PgBouncer."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "safe shutdown": waits for clients' transactions
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
