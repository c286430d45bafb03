"""A batch of queue messages: every object of every message embedded in one model run per model, each
message saved (or retried) on its own."""

from __future__ import annotations

import json
from collections.abc import Iterable

from imagesearch.ingest.events import UnrecognisedEvent, parse_body
from imagesearch.ingest.processor import Ingestor, Outcome, Prepared
from imagesearch.logs import logger


class MessageBatch:
    """Messages (id, JSON body) prepared and embedded at construction; `save(id)` writes one message's
    objects and raises its first transient fault, so only that message is retried."""

    def __init__(self, ingestor: Ingestor, messages: Iterable[tuple[str, str]]) -> None:
        self.ingestor = ingestor
        self.items: dict[str, list[Prepared]] = {}
        for message_id, body in messages:
            try:
                events = parse_body(json.loads(body))
            except (ValueError, KeyError, TypeError, UnrecognisedEvent):
                # A message that can never be understood is acknowledged (and logged), not retried forever.
                logger.error("unrecognised message dropped", extra={"message_id": message_id})
                events = []
            self.items[message_id] = [ingestor.prepare(event) for event in events]
        ingestor.embed([item for items in self.items.values() for item in items])

    def save(self, message_id: str) -> list[Outcome]:
        return [self.ingestor.save(item) for item in self.items.get(message_id, [])]
