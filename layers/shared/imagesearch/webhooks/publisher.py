"""Announcing committed image events right away: EventBridge on AWS, a nudge to the local dispatcher.

Called after the transaction that made the change commits, best effort: a failure is logged and counted
(EventsNotPublished), never raised, so ingestion and deletes never fail for it. EventBridge delivery is
therefore at most once from our side; webhooks are the durable path (their outbox rows are written in the
transaction itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from imagesearch.logs import logger
from imagesearch.observability import EVENTS_NOT_PUBLISHED, metrics
from imagesearch.webhooks.events import EVENTBRIDGE_SOURCE, ImageEvent

PUT_EVENTS_BATCH = 10  # PutEvents takes at most 10 entries


class EventPublisher(Protocol):
    """Told about events whose change is committed; never raises."""

    def publish(self, events: Sequence[ImageEvent]) -> None: ...


class NoPublisher:
    """Events go nowhere but the webhook outbox (no bus configured)."""

    def publish(self, events: Sequence[ImageEvent]) -> None:
        return None


class CallbackPublisher:
    """Calls `callback` once per non-empty publish (the local stack wakes its dispatcher with it)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def publish(self, events: Sequence[ImageEvent]) -> None:
        if events:
            self._callback()


class EventBridgePublisher:
    """PutEvents on one bus: source `imagesearch`, detail-type `imagesearch.image.<what>`."""

    def __init__(self, bus_name: str, client_factory: Callable[[], Any]) -> None:
        self.bus_name = bus_name
        self._client_factory = client_factory
        self._client: Any = None

    def _events_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def entries(self, events: Sequence[ImageEvent]) -> list[dict[str, Any]]:
        return [
            {
                "Source": EVENTBRIDGE_SOURCE,
                "DetailType": event.detail_type,
                "Detail": json.dumps(event.detail()),
                "EventBusName": self.bus_name,
                "Time": event.created_at,
            }
            for event in events
        ]

    def publish(self, events: Sequence[ImageEvent]) -> None:
        entries = self.entries(events)
        for start in range(0, len(entries), PUT_EVENTS_BATCH):
            batch = entries[start : start + PUT_EVENTS_BATCH]
            try:
                answer = self._events_client().put_events(Entries=batch)
                failed = int(answer.get("FailedEntryCount", 0))
                errors = {e.get("ErrorCode") for e in answer.get("Entries", []) if e.get("ErrorCode")}
            except Exception as e:  # best effort by design: the change is committed, the webhooks durable
                failed, errors = len(batch), {type(e).__name__}
            if failed:
                metrics.add(EVENTS_NOT_PUBLISHED, failed)
                logger.warning(
                    "events not published to EventBridge",
                    extra={"bus": self.bus_name, "count": failed, "errors": sorted(str(e) for e in errors)},
                )


def eventbridge_client() -> Any:
    """A boto3 EventBridge client with short timeouts (a slow PutEvents must not hold an upload)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=4, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client("events", config=config)
