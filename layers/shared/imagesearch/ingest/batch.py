"""A batch of queue messages: every object of every message embedded in one model run per model, each
message saved (or retried) on its own. Back-fill messages (imagesearch.ingest.backfill) are embedded
when their message is saved."""

from __future__ import annotations

import json
from collections.abc import Iterable

from imagesearch.ingest.backfill import Backfiller, MalformedMessage, ReindexMessage, is_ours, parse_message
from imagesearch.ingest.events import UnrecognisedEvent, parse_body
from imagesearch.ingest.processor import Ingestor, Outcome, Prepared
from imagesearch.logs import logger
from imagesearch.model.registry import ModelRegistry
from imagesearch.observability import IMAGES_BACKFILLED, metrics


class MessageBatch:
    """Messages (id, JSON body) prepared and embedded at construction; `save(id)` writes one message's
    objects (or back-fills its images) and raises its first transient fault, so only that message is
    retried."""

    def __init__(
        self, ingestor: Ingestor, messages: Iterable[tuple[str, str]], *, models: ModelRegistry
    ) -> None:
        self.ingestor = ingestor
        self.models = models
        self.items: dict[str, list[Prepared]] = {}
        self.backfills: dict[str, ReindexMessage] = {}
        for message_id, body in messages:
            events = []
            try:
                payload = json.loads(body)
                if is_ours(payload):
                    self.backfills[message_id] = parse_message(payload)
                elif isinstance(payload, dict):
                    events = parse_body(payload)
                else:
                    raise UnrecognisedEvent(f"a JSON {type(payload).__name__}, not an object")
            except MalformedMessage as e:
                # Permanently bad: acknowledged (and logged), not retried forever.
                logger.error(
                    "malformed back-fill message dropped", extra={"message_id": message_id, "error": str(e)}
                )
            except (ValueError, KeyError, TypeError, UnrecognisedEvent):
                logger.error("unrecognised message dropped", extra={"message_id": message_id})
            self.items[message_id] = [ingestor.prepare(event) for event in events]
        ingestor.embed([item for items in self.items.values() for item in items])

    def save(self, message_id: str) -> list[Outcome]:
        backfill = self.backfills.get(message_id)
        if backfill is not None:
            report = self._backfiller().run(backfill)
            metrics.add(IMAGES_BACKFILLED, report.embedded)
            return [Outcome.READY] * report.embedded + [Outcome.SKIPPED] * report.skipped
        outcomes = []
        for item in self.items.get(message_id, []):
            outcomes.append(self.ingestor.save(item))
            item.decoded = None  # saved: its pixels need not wait for the rest of the batch
        return outcomes

    def _backfiller(self) -> Backfiller:
        ingestor = self.ingestor
        return Backfiller(
            ingestor.db, ingestor.storage, self.models, max_image_pixels=ingestor.max_image_pixels
        )
