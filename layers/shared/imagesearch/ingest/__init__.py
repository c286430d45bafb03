"""Ingestion: object-created events -> validated, embedded, searchable images."""
