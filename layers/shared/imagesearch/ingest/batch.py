"""A batch of queue messages: every object of every message embedded in one model run per model, each
message saved (or retried) on its own. Back-fill messages (imagesearch.ingest.backfill) are embedded, and
enrich messages (imagesearch.ingest.enrich) run their step, when their message is saved."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from imagesearch.ingest.backfill import (
    MESSAGE_KEY,
    Backfiller,
    MalformedMessage,
    ReindexMessage,
    is_ours,
    parse_message,
)
from imagesearch.ingest.enrich import EnrichMessage, EnrichStep, Limits, parse_enrich_message, run_message
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
        self,
        ingestor: Ingestor,
        messages: Iterable[tuple[str, str]],
        *,
        models: ModelRegistry,
        steps: Sequence[EnrichStep] = (),
    ) -> None:
        self.ingestor = ingestor
        self.models = models
        self.steps = steps
        self.items: dict[str, list[Prepared]] = {}
        self.backfills: dict[str, ReindexMessage] = {}
        self.enrichments: dict[str, EnrichMessage] = {}
        for message_id, body in messages:
            events = []
            try:
                payload = json.loads(body)
                if is_ours(payload) and payload[MESSAGE_KEY] == "enrich":
                    self.enrichments[message_id] = parse_enrich_message(payload)
                elif is_ours(payload):
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
        enrichment = self.enrichments.get(message_id)
        if enrichment is not None:
            ingestor = self.ingestor
            limits = Limits(max_bytes=ingestor.max_upload_bytes, max_pixels=ingestor.max_image_pixels)
            enriched = run_message(ingestor.db, ingestor.storage, self.steps, enrichment, limits=limits)
            return [Outcome.READY] * enriched.stored + [Outcome.SKIPPED] * len(enriched.skipped)
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
