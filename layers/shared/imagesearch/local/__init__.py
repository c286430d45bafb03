"""The local stack: embedded Postgres, filesystem storage, both HTTP functions and the embed worker."""
