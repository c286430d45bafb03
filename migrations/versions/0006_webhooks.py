"""Webhooks: per-tenant subscriptions, and a transactional outbox of their deliveries.

`webhooks` holds a tenant's subscriptions (URL, event types, the signing secret: a shared secret the
sender needs in the clear, so it is stored as such). `webhook_deliveries` is the outbox: one row per
matching subscription per event, inserted in the transaction that changes the image (ready, failed,
deleted), so an event is recorded exactly when its change is committed; the dispatcher works the rows
off (imagesearch.webhooks.dispatch) and keeps each one's outcome, which `GET /webhooks/{id}/deliveries`
shows. Deleting a subscription, or its tenant, takes its deliveries along.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE webhooks (
        id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
        events      text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 16),
        description text CHECK (length(description) <= 500),
        secret      text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

    CREATE TABLE webhook_deliveries (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        tenant_id        uuid NOT NULL,
        event_id         uuid NOT NULL,
        event_type       text NOT NULL,
        payload          jsonb NOT NULL,
        status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         integer NOT NULL DEFAULT 0,
        next_attempt_at  timestamptz,
        last_status_code integer,
        last_error       text,
        delivered_at     timestamptz,
        created_at       timestamptz NOT NULL DEFAULT now(),
        UNIQUE (webhook_id, event_id)
    );
    -- The dispatcher's claim: due pending rows, oldest due first.
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
    -- A subscription's deliveries, newest first (GET /webhooks/{id}/deliveries).
    CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries; DROP TABLE webhooks;")
