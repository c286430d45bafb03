"""The outbound events: what happened to an image, as a webhook body and as an EventBridge detail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class EventType(StrEnum):
    IMAGE_READY = "image.ready"
    IMAGE_FAILED = "image.failed"
    IMAGE_DELETED = "image.deleted"


EVENT_TYPES = tuple(t.value for t in EventType)
EVENTBRIDGE_SOURCE = "imagesearch"


@dataclass(frozen=True, kw_only=True)
class ImageEvent:
    """One change of one image; `id` is the same in every webhook delivery and EventBridge event of it."""

    type: EventType
    tenant_id: UUID
    image_id: UUID
    status: str  # the image's status after the change: ready, failed, deleted
    reason: str | None = None  # why it failed
    id: UUID = field(default_factory=uuid.uuid4)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"image_id": str(self.image_id), "status": self.status}
        if self.reason is not None:
            data["reason"] = self.reason
        return data

    def payload(self) -> dict[str, Any]:
        """The webhook body (docs/webhooks.md)."""
        return {
            "id": str(self.id),
            "type": self.type.value,
            "created_at": self.created_at.isoformat(),
            "tenant_id": str(self.tenant_id),
            "data": self.data(),
        }

    @property
    def detail_type(self) -> str:
        """The EventBridge detail-type: imagesearch.image.ready, ..."""
        return f"{EVENTBRIDGE_SOURCE}.{self.type.value}"

    def detail(self) -> dict[str, Any]:
        """The EventBridge detail."""
        return {"tenant_id": str(self.tenant_id), **self.data()}


def ready(tenant_id: UUID, image_id: UUID) -> ImageEvent:
    return ImageEvent(type=EventType.IMAGE_READY, tenant_id=tenant_id, image_id=image_id, status="ready")


def failed(tenant_id: UUID, image_id: UUID, reason: str) -> ImageEvent:
    return ImageEvent(
        type=EventType.IMAGE_FAILED, tenant_id=tenant_id, image_id=image_id, status="failed", reason=reason
    )


def deleted(tenant_id: UUID, image_id: UUID) -> ImageEvent:
    return ImageEvent(type=EventType.IMAGE_DELETED, tenant_id=tenant_id, image_id=image_id, status="deleted")
