"""Where a new database connection gets its URL and password.

Three ways, from the settings: a plain URL (development); a Secrets Manager secret, read once per
container and read again when the server refuses its password (the secret was rotated: old containers
recover on their next connection instead of answering 503 until Lambda recycles them); and IAM
authentication (RDS Proxy or RDS with `rds-db:connect`), where each new connection presents a token made
from the function's role, so no password exists anywhere.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from imagesearch import sigv4
from imagesearch.concurrency import in_thread
from imagesearch.config import Settings
from imagesearch.errors import DatabaseUnavailable
from imagesearch.logs import logger

# A refused password re-reads the secret at most this often: a wrong password in a secret that did not
# change must not turn every connection attempt into a Secrets Manager call.
SECRET_REREAD_SECONDS = 10.0


def is_authentication_failure(error: psycopg.OperationalError) -> bool:
    """Whether the server refused the credentials (SQLSTATE 28P01 or 28000). libpq keeps no SQLSTATE for a
    failed connection, so its message is read as well (PostgreSQL's and RDS Proxy's English wording)."""
    if error.sqlstate in ("28P01", "28000"):
        return True
    return "authentication failed" in str(error).lower()


@dataclass
class ConnectionSource:
    """The URL of new connections (`url()`), the keyword arguments each one adds (`connect_kwargs()`: an
    IAM token as its password), and `refresh()` after the server refused the credentials."""

    resolve: Callable[[], str]
    reread: Callable[[], str] | None = None  # the secret read again (None: nothing to re-read)
    token: Callable[[dict[str, Any]], str] | None = None  # an IAM token for the URL's host, port, user
    _url: str | None = field(default=None, repr=False)
    _reread_at: float = field(default=float("-inf"), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def plain(cls, url: str) -> ConnectionSource:
        return cls(resolve=lambda: url)

    def url(self) -> str:
        """The URL (a secret is read on the first call; DatabaseUnavailable when it cannot be)."""
        url = self._url
        if url is None:
            with self._lock:
                if self._url is None:
                    self._url = self.resolve()
                url = self._url
        return url

    def connect_kwargs(self) -> dict[str, Any]:
        """What a new connection adds to the URL: with IAM, a fresh token as its password (and TLS)."""
        if self.token is None:
            return {}
        parts = conninfo_to_dict(self.url())
        kwargs: dict[str, Any] = {"password": self.token(parts)}
        if "sslmode" not in parts:
            kwargs["sslmode"] = "require"  # RDS refuses an IAM token without TLS
        return kwargs

    def refresh(self) -> bool:
        """After an authentication failure: read the secret again; True when its URL changed."""
        if self.reread is None:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._reread_at < SECRET_REREAD_SECONDS:
                return False
            self._reread_at = now
            old, new = self._url, self.reread()
            self._url = new
        return new != old


def _iam_token(parts: dict[str, Any]) -> str:
    """An RDS IAM token for the URL's host, port and user, signed with the function's credentials."""
    host, user = parts.get("host"), parts.get("user")
    if not host or not user:
        raise DatabaseUnavailable("IAM authentication needs a database URL with a user and a host")
    port = int(parts.get("port") or 5432)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        # The RDS and RDS Proxy endpoints name their region: name.id.REGION.rds.amazonaws.com
        labels = str(host).split(".")
        region = labels[-4] if len(labels) >= 4 and labels[-3] == "rds" else None
    if not region:
        raise DatabaseUnavailable("IAM authentication needs AWS_REGION (the database's region)")
    credentials = sigv4.current_credentials()
    if credentials is not None:  # Lambda: the role's credentials are in the environment
        return sigv4.rds_auth_token(str(host), port, str(user), region=region, credentials=credentials)
    import boto3  # elsewhere (a profile, an instance role): botocore finds them

    token: str = boto3.client("rds", region_name=region).generate_db_auth_token(
        DBHostname=str(host), Port=port, DBUsername=str(user), Region=region
    )
    return token


def connection_source(settings: Settings, *, role: str) -> ConnectionSource | None:
    """The source of the primary's connections (role "primary") or the replica's (None without one)."""
    if role == "replica":
        url, arn = settings.database_replica_url, settings.database_replica_secret_arn
        if url is None and arn is None:
            return None
    else:
        url, arn = settings.database_url, settings.database_secret_arn
        if url is None and arn is None:
            raise DatabaseUnavailable(
                "IMAGESEARCH_DATABASE_URL is not set (nor IMAGESEARCH_DATABASE_SECRET_ARN)"
            )
    token = _iam_token if settings.database_iam_auth else None
    if arn is not None and url is None:
        from imagesearch.db.secret import database_url_from_secret, reread_secret

        secret = arn
        return ConnectionSource(
            resolve=lambda: database_url_from_secret(secret),
            reread=lambda: reread_secret(secret),
            token=token,
        )
    assert url is not None
    plain = url
    return ConnectionSource(resolve=lambda: plain, token=token)


def retrying_connection_class(source: ConnectionSource) -> type[psycopg.Connection[Any]]:
    """A connection class whose `connect`, refused for its credentials, re-reads them once and retries."""

    class Connection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                return super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as e:
                if not is_authentication_failure(e) or not source.refresh():
                    raise
            logger.warning(
                "the database refused the credentials: connecting again with the secret's new value"
            )
            return super().connect(source.url(), **{**kwargs, **source.connect_kwargs()})

    return Connection


async def connect_async(source: ConnectionSource, kwargs: dict[str, Any]) -> psycopg.AsyncConnection:
    """An async connection from `source`, retried once with re-read credentials as `retrying_connection_class`
    does. The URL and token are made on a worker thread: reading a secret or signing a token may block."""

    def target() -> tuple[str, dict[str, Any]]:
        return source.url(), {**kwargs, **source.connect_kwargs()}

    url, connect_kwargs = await in_thread(target)
    try:
        return await psycopg.AsyncConnection.connect(url, **connect_kwargs)
    except psycopg.OperationalError as e:
        if not is_authentication_failure(e) or not await in_thread(source.refresh):
            raise
    logger.warning("the database refused the credentials: connecting again with the secret's new value")
    url, connect_kwargs = await in_thread(target)
    return await psycopg.AsyncConnection.connect(url, **connect_kwargs)
