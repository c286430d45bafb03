"""A throwaway embedded PostgreSQL with one migrated database, for the benches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from imagesearch.db import migrate
from imagesearch.local.postgres import LOCAL_SERVER_SETTINGS, EmbeddedPostgres


@contextmanager
def migrated_database(
    directory: Path, name: str, settings: Mapping[str, str] = LOCAL_SERVER_SETTINGS
) -> Iterator[str]:
    """Start a server in `directory`/pg with `settings`, yield the URL of database `name` at the latest
    migration, and stop the server when the block ends."""
    server = EmbeddedPostgres(directory / "pg", server_settings=dict(settings))
    server.start()
    try:
        url = server.ensure_database(name)
        migrate.upgrade(url)
        yield url
    finally:
        server.stop()
