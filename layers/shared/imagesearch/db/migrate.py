"""Apply the Alembic migrations (the single source of truth for the schema) to a database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagesearch.config import REPO_ROOT
from imagesearch.errors import ImageSearchError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = REPO_ROOT / "migrations"
# The schema this code needs: the newest migration (tests/test_migrations.py keeps the two equal). A
# function whose database is older refuses to serve (`Database(required_schema=...)`) until it is migrated.
SCHEMA_REVISION = "0010"


class MigrationsMissing(ImageSearchError):
    """The migrations folder is not where the source checkout keeps it."""


def sqlalchemy_url(url: str) -> str:
    """postgresql://... -> postgresql+psycopg://... so SQLAlchemy uses psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _config(url: str, migrations_dir: Path | None = None) -> Config:
    from alembic.config import Config

    directory = migrations_dir or MIGRATIONS_DIR
    if not (directory / "env.py").exists():
        raise MigrationsMissing(f"no Alembic migrations at {directory}: run from a source checkout")
    config = Config()
    config.set_main_option("script_location", str(directory))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(
    url: str,
    revision: str = "head",
    *,
    migrations_dir: Path | None = None,
    connect_args: dict[str, Any] | None = None,
) -> None:
    """Bring the database at `url` up to `revision`, with the migrations in `migrations_dir` (default: the
    checkout's); `connect_args` are added to the connection's (an IAM token as its password, say)."""
    from alembic import command

    config = _config(url, migrations_dir)
    config.attributes["connect_args"] = dict(connect_args or {})
    command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision` ("base" removes everything)."""
    from alembic import command

    command.downgrade(_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    import psycopg

    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
