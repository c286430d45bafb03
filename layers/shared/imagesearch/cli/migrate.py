"""`imagesearch migrate`: apply the Alembic migrations to the configured database."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="apply the schema migrations to IMAGESEARCH_DATABASE_URL"
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--database-url", help="override IMAGESEARCH_DATABASE_URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagesearch.config import load_settings
    from imagesearch.db import migrate

    settings = load_settings(**({"database_url": args.database_url} if args.database_url else {}))
    url = settings.database_url
    if not url:
        print("imagesearch migrate: set IMAGESEARCH_DATABASE_URL (or pass --database-url)")
        return 2
    # In the container image the migrations sit under IMAGESEARCH_APP_DIR, not in a source checkout.
    migrations_dir = settings.app_dir / "migrations" if settings.app_dir is not None else None
    migrate.upgrade(url, args.revision, migrations_dir=migrations_dir)
    print(f"database at revision {migrate.current(url)}")
    return 0
