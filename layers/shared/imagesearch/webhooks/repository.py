"""SQL on `webhooks` and `webhook_deliveries` (the outbox). Every function takes a connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from imagesearch import cursors
from imagesearch.webhooks.events import ImageEvent


class WebhookRecord(BaseModel):
    id: UUID
    tenant_id: UUID
    url: str
    events: list[str]
    description: str | None
    secret: str
    created_at: datetime


class DeliveryFields(BaseModel):
    """A delivery's fields as the API shows them (webhooks.schemas.DeliveryPublic narrows the strings)."""

    id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryRecord(DeliveryFields):
    webhook_id: UUID


class DueDelivery(BaseModel):
    """A claimed delivery with what sending it needs."""

    id: UUID
    event_id: UUID
    event_type: str
    payload: dict[str, Any]
    attempts: int  # including the one just claimed
    url: str
    secret: str


WEBHOOK_COLUMNS = ", ".join(WebhookRecord.model_fields)
DELIVERY_COLUMNS = ", ".join(DeliveryRecord.model_fields)


# --- subscriptions ----------------------------------------------------------------------------------------


def insert(
    conn: psycopg.Connection,
    *,
    tenant_id: UUID,
    url: str,
    events: list[str],
    description: str | None,
    secret: str,
) -> WebhookRecord:
    with conn.cursor(row_factory=class_row(WebhookRecord)) as cur:
        cur.execute(
            f"INSERT INTO webhooks (tenant_id, url, events, description, secret) VALUES (%s, %s, %s, %s, %s) "
            f"RETURNING {WEBHOOK_COLUMNS}",
            (tenant_id, url, events, description, secret),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def count(conn: psycopg.Connection, tenant_id: UUID) -> int:
    row = conn.execute("SELECT count(*) FROM webhooks WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return int(row[0]) if row else 0


def get(conn: psycopg.Connection, tenant_id: UUID, webhook_id: UUID) -> WebhookRecord | None:
    with conn.cursor(row_factory=class_row(WebhookRecord)) as cur:
        cur.execute(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = %s AND id = %s",
            (tenant_id, webhook_id),
        )
        return cur.fetchone()


def list_all(conn: psycopg.Connection, tenant_id: UUID) -> list[WebhookRecord]:
    with conn.cursor(row_factory=class_row(WebhookRecord)) as cur:
        cur.execute(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = %s ORDER BY created_at, id",
            (tenant_id,),
        )
        return cur.fetchall()


def delete(conn: psycopg.Connection, tenant_id: UUID, webhook_id: UUID) -> bool:
    """Remove a subscription and its deliveries; whether it existed."""
    row = conn.execute(
        "DELETE FROM webhooks WHERE tenant_id = %s AND id = %s RETURNING id", (tenant_id, webhook_id)
    ).fetchone()
    return row is not None


# --- the outbox -------------------------------------------------------------------------------------------


def enqueue(conn: psycopg.Connection, event: ImageEvent) -> int:
    """One pending delivery per subscription of the event's own tenant that wants its type, in the
    caller's transaction; how many (one statement: without subscriptions it inserts nothing)."""
    cur = conn.execute(
        """
        INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_id, event_type, payload, next_attempt_at)
        SELECT id, tenant_id, %(event_id)s, %(type)s, %(payload)s, now() FROM webhooks
        WHERE tenant_id = %(tenant)s AND %(type)s = ANY (events)
        ON CONFLICT (webhook_id, event_id) DO NOTHING
        """,
        {
            "event_id": event.id,
            "type": event.type.value,
            "payload": Jsonb(event.payload()),
            "tenant": event.tenant_id,
        },
    )
    return cur.rowcount


def claim_due(
    conn: psycopg.Connection, *, now: datetime, limit: int, lease_seconds: float
) -> list[DueDelivery]:
    """Up to `limit` pending deliveries due at `now`, each counted as an attempt and hidden from other
    dispatchers for `lease_seconds` (a dispatcher that dies mid-send leaves them due again then)."""
    with conn.cursor(row_factory=class_row(DueDelivery)) as cur:
        cur.execute(
            """
            WITH due AS (
                SELECT id FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= %(now)s
                ORDER BY next_attempt_at
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE webhook_deliveries d
                SET attempts = d.attempts + 1,
                    next_attempt_at = %(now)s + make_interval(secs => %(lease)s)
                FROM due WHERE d.id = due.id
                RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.attempts,
                          d.next_attempt_at
            )
            SELECT c.id, c.event_id, c.event_type, c.payload, c.attempts, w.url, w.secret
            FROM claimed c JOIN webhooks w ON w.id = c.webhook_id
            ORDER BY c.next_attempt_at
            """,
            {"now": now, "limit": limit, "lease": lease_seconds},
        )
        return cur.fetchall()


def record_delivered(conn: psycopg.Connection, delivery_id: UUID, *, status_code: int, at: datetime) -> None:
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'delivered', last_status_code = %s, last_error = NULL, "
        "delivered_at = %s, next_attempt_at = NULL WHERE id = %s",
        (status_code, at, delivery_id),
    )


def record_failure(
    conn: psycopg.Connection,
    delivery_id: UUID,
    *,
    status_code: int | None,
    error: str,
    next_attempt_at: datetime | None,
) -> None:
    """A failed attempt: due again at `next_attempt_at`, or given up (`failed`) when None."""
    conn.execute(
        "UPDATE webhook_deliveries SET status = CASE WHEN %(next)s::timestamptz IS NULL THEN 'failed' "
        "ELSE 'pending' END, last_status_code = %(code)s, last_error = %(error)s, next_attempt_at = %(next)s "
        "WHERE id = %(id)s",
        {"next": next_attempt_at, "code": status_code, "error": error, "id": delivery_id},
    )


def encode_cursor(created_at: datetime, delivery_id: UUID) -> str:
    return cursors.encode_cursor([created_at.isoformat(), str(delivery_id)])


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    def parse(values: Any) -> tuple[datetime, UUID]:
        created_at, delivery_id = values
        return datetime.fromisoformat(created_at), UUID(delivery_id)

    return cursors.decode_cursor(cursor, parse)


def list_deliveries(
    conn: psycopg.Connection, webhook_id: UUID, *, limit: int, after: tuple[datetime, UUID] | None
) -> list[DeliveryRecord]:
    """A subscription's deliveries, newest first; `after`: (created_at, id) of the previous page's last."""
    with conn.cursor(row_factory=class_row(DeliveryRecord)) as cur:
        cur.execute(
            f"""
            SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
            WHERE webhook_id = %(webhook)s
              AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT %(limit)s
            """,
            {
                "webhook": webhook_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
        return cur.fetchall()
