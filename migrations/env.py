"""Alembic environment: raw SQL migrations over a psycopg 3 connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from imagesearch.db.migrate import sqlalchemy_url


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run `imagesearch migrate` or set sqlalchemy.url")
    # No server-side prepared statements: migrations also run through a transaction-pooling proxy
    # (PgBouncer, RDS Proxy), which cannot follow named statements from one transaction to the next.
    # `imagesearch.db.migrate.upgrade(..., connect_args=...)` may add more (an IAM token as the password).
    connect_args = {"prepare_threshold": None, **context.config.attributes.get("connect_args", {})}
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool, connect_args=connect_args)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported; run against a database")
run_migrations_online()
