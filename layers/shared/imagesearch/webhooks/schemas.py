"""Request and response shapes of the webhooks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagesearch.webhooks.events import EVENT_TYPES
from imagesearch.webhooks.repository import DeliveryFields, DeliveryRecord, WebhookRecord
from imagesearch.webhooks.urls import MAX_URL_LENGTH

EventName = Literal["image.ready", "image.failed", "image.deleted"]
assert set(EventName.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


class WebhookCreate(BaseModel):
    """A subscription: where to send which events."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, description="an http(s) URL")]
    events: Annotated[list[EventName], Field(min_length=1, max_length=len(EVENT_TYPES))]
    description: Annotated[str | None, Field(max_length=500)] = None

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[EventName]) -> list[EventName]:
        return list(dict.fromkeys(value))  # the order given, each once


class WebhookPublic(BaseModel):
    id: UUID
    url: str
    events: list[EventName]
    description: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: WebhookRecord) -> WebhookPublic:
        return cls.model_validate(record.model_dump(exclude={"secret", "tenant_id"}))


class WebhookCreated(WebhookPublic):
    """The create response: the only time the signing secret is shown."""

    secret: str = Field(description="HMAC-SHA256 key of the Imagesearch-Signature header; shown once")


class WebhookList(BaseModel):
    items: list[WebhookPublic]


class DeliveryPublic(DeliveryFields):
    event_type: EventName
    status: Literal["pending", "delivered", "failed"]

    @classmethod
    def from_record(cls, record: DeliveryRecord) -> DeliveryPublic:
        return cls.model_validate(record.model_dump(exclude={"webhook_id"}))


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None
