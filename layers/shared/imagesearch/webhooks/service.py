"""The webhooks API's behaviour: subscribe (URL checked), list, show, delete, and the delivery log."""

from __future__ import annotations

import secrets
from uuid import UUID

from imagesearch.db import Database
from imagesearch.errors import InvalidRequest, NotFound
from imagesearch.webhooks import repository
from imagesearch.webhooks.schemas import (
    DeliveryList,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
)
from imagesearch.webhooks.urls import check_url

MAX_WEBHOOKS_PER_TENANT = 20  # each event fans out to every matching one, in the ingesting transaction


class WebhookService:
    """Subscriptions of every tenant, each seen only by its own."""

    def __init__(self, db: Database, *, allow_private_urls: bool = False) -> None:
        self.db = db
        self.allow_private_urls = allow_private_urls

    def create(self, tenant_id: UUID, body: WebhookCreate) -> WebhookCreated:
        """A new subscription with a new signing secret (shown in this answer only)."""
        check_url(body.url, allow_private=self.allow_private_urls)
        with self.db.connection() as conn:
            if repository.count(conn, tenant_id) >= MAX_WEBHOOKS_PER_TENANT:
                raise InvalidRequest(f"a tenant has at most {MAX_WEBHOOKS_PER_TENANT} webhooks")
            record = repository.insert(
                conn,
                tenant_id=tenant_id,
                url=body.url,
                events=list(body.events),
                description=body.description,
                secret="whsec_" + secrets.token_urlsafe(32),
            )
        return WebhookCreated.model_validate(record.model_dump(exclude={"tenant_id"}))

    def list(self, tenant_id: UUID) -> WebhookList:
        with self.db.connection() as conn:
            records = repository.list_all(conn, tenant_id)
        return WebhookList(items=[WebhookPublic.from_record(r) for r in records])

    def get(self, tenant_id: UUID, webhook_id: UUID) -> WebhookPublic:
        with self.db.connection() as conn:
            record = repository.get(conn, tenant_id, webhook_id)
        if record is None:
            raise NotFound(f"no webhook {webhook_id}")
        return WebhookPublic.from_record(record)

    def delete(self, tenant_id: UUID, webhook_id: UUID) -> None:
        """Remove the subscription; its pending deliveries are not sent."""
        with self.db.connection() as conn:
            if not repository.delete(conn, tenant_id, webhook_id):
                raise NotFound(f"no webhook {webhook_id}")

    def deliveries(
        self, tenant_id: UUID, webhook_id: UUID, *, limit: int, cursor: str | None
    ) -> DeliveryList:
        """The subscription's deliveries, newest first, one page at a time."""
        after = repository.decode_cursor(cursor) if cursor else None
        with self.db.connection() as conn:
            if repository.get(conn, tenant_id, webhook_id) is None:
                raise NotFound(f"no webhook {webhook_id}")
            records = repository.list_deliveries(conn, webhook_id, limit=limit + 1, after=after)
        page = records[:limit]
        next_cursor = (
            repository.encode_cursor(page[-1].created_at, page[-1].id) if len(records) > limit else None
        )
        return DeliveryList(items=[DeliveryPublic.from_record(r) for r in page], next_cursor=next_cursor)
