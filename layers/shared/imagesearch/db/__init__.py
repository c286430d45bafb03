"""PostgreSQL access: a lazily opened psycopg pool with pgvector registered per connection."""

from imagesearch.db.pool import Database, get_database, get_search_database

__all__ = ["Database", "get_database", "get_search_database"]
