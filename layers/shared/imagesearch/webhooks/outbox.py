"""Recording an image event in the transaction that makes the change (the transactional outbox)."""

from __future__ import annotations

import psycopg

from imagesearch.webhooks import repository
from imagesearch.webhooks.events import ImageEvent


def record(conn: psycopg.Connection, event: ImageEvent) -> ImageEvent:
    """Write the event's webhook deliveries in the caller's transaction (none when its tenant has no
    matching subscription); the event, to be published once that transaction is committed."""
    repository.enqueue(conn, event)
    return event
