"""PostgreSQL access: a lazily opened psycopg pool with pgvector registered per connection."""

from imagesearch.db.pool import Database

__all__ = ["Database"]
