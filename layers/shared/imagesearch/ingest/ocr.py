"""Text in pictures into `images.ocr_text` (weight D of the keyword index, docs/search.md).

Two ways in, one engine (imagesearch.enrichment.ocr):
- `OcrReader.read_event`: the OCR function's object-created events (and, locally, the embed handler's own
  events, right after it). The event can arrive before the image is embedded: while the record is pending,
  or still holds an older version of the object, `ImageNotReadyYet` is raised and the queue retries; a
  failed, deleted or replaced image is skipped. The text is written only while the record still holds the
  version that was read (its etag and sequencer), so a replaced object never gets its predecessor's text.
- `OcrStep`: the back-fill step (`imagesearch enrich --missing`, enrich messages) for ready images whose
  `ocr_at` is unset.

A picture the engine fails on is stored as read with no text (and a warning logged): OCR never fails an
image, and a back-fill does not retry it forever.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

import psycopg

from imagesearch.db import Database
from imagesearch.enrichment.ocr import MAX_SIDE, OcrEngine, joined_text
from imagesearch.errors import ImageRejected, ObjectNotFound
from imagesearch.images import object_keys, repository
from imagesearch.imaging import open_image
from imagesearch.ingest.backfill import MESSAGE_KEY, MalformedMessage, is_ours
from imagesearch.ingest.enrich import Limits, parse_enrich_message, run_message
from imagesearch.ingest.events import ObjectEvent, UnrecognisedEvent, parse_body
from imagesearch.ingest.processor import sequencer_order
from imagesearch.logs import logger
from imagesearch.storage import ObjectStorage


class ImageNotReadyYet(Exception):
    """The image this event is about is not embedded yet: retry later (transient)."""


class OcrOutcome(StrEnum):
    STORED = "stored"
    SKIPPED = "skipped"


class _Source(Protocol):
    """What a step reads (imagesearch.ingest.enrich.EnrichSource)."""

    @property
    def image_id(self) -> UUID: ...

    def data(self) -> bytes: ...


def store_text(
    conn: psycopg.Connection,
    image_id: UUID,
    text: str | None,
    *,
    only_unread: bool = False,
    version: tuple[str | None, str | None] | None = None,
) -> bool:
    """Store a ready image's text (None: none found) as read; whether it was stored. `only_unread`: not
    where it was read meanwhile; `version` (etag, sequencer): only while the record holds that object."""
    cur = conn.execute(
        """
        UPDATE images SET ocr_text = %(text)s, ocr_at = now()
        WHERE id = %(id)s AND status = 'ready'
          AND (NOT %(only_unread)s OR ocr_at IS NULL)
          AND (NOT %(check_version)s OR (object_etag IS NOT DISTINCT FROM %(etag)s
                                         AND sequencer IS NOT DISTINCT FROM %(sequencer)s))
        """,
        {
            "text": text,
            "id": image_id,
            "only_unread": only_unread,
            "check_version": version is not None,
            "etag": version[0] if version else None,
            "sequencer": version[1] if version else None,
        },
    )
    return cur.rowcount == 1


class OcrStep:
    """The enrichment step: the text of a ready image's original."""

    name = "ocr"
    unread = "ocr_at IS NULL"
    # About 2 s of OCR a 12 Mpx photo (docs/search.md): 5 an enrich message, 4 messages an invocation,
    # keeps the OCR function (60 s) within its timeout.
    images_per_message = 5

    def __init__(self, engine: OcrEngine, *, max_pixels: int) -> None:
        self.engine = engine
        self.max_pixels = max_pixels

    def params(self) -> dict[str, Any]:
        return {}

    def read_text(self, data: bytes, *, image_id: UUID) -> str | None:
        """The text of the picture in `data` (None: none); ImageRejected when it does not decode."""
        # A JPEG may be decoded at reduced scale, keeping its shorter side at least as large as the engine
        # reads a 4:3 photo (its longer side at MAX_SIDE): it would see no more.
        image = open_image(data, max_pixels=self.max_pixels, reduce_to=MAX_SIDE * 3 // 4)
        try:
            return joined_text(self.engine.read(image))
        except Exception as e:  # the engine's own failure on one picture: recorded as no text
            logger.warning(
                "OCR failed on a picture: stored without text",
                extra={"image_id": str(image_id), "error": f"{type(e).__name__}: {e}"},
            )
            return None

    def enrich(self, db: Database, source: _Source) -> bool:
        text = self.read_text(source.data(), image_id=source.image_id)
        with db.connection() as conn:
            return store_text(conn, source.image_id, text, only_unread=True)


class OcrReader:
    """Object-created events -> text of the images they created, once those are ready."""

    def __init__(self, db: Database, storage: ObjectStorage, step: OcrStep) -> None:
        self.db = db
        self.storage = storage
        self.step = step

    def read_event(self, event: ObjectEvent) -> OcrOutcome:
        """Read and store the text of the event's image; ImageNotReadyYet while it is not embedded."""
        key = self.storage.key_from_event(event.bucket, event.key)
        if key is None or object_keys.parse_original_key(key) is None:
            return self._skipped(event, "not an original under this store")
        with self.db.connection() as conn:
            record = repository.get_by_key(conn, key)
        if record is None:
            return self._skipped(event, "deleted")
        newer, older = (
            sequencer_order(event.sequencer) > sequencer_order(record.sequencer),
            sequencer_order(event.sequencer) < sequencer_order(record.sequencer),
        )
        if record.status == "pending" or (newer and record.sequencer is not None):
            raise ImageNotReadyYet(f"image {record.id} is not embedded yet")
        if older:
            return self._skipped(event, "stale event: a newer object was processed")
        if record.status != "ready":
            return self._skipped(event, f"the image is {record.status}")
        if event.etag and record.object_etag and event.etag != record.object_etag:
            return self._skipped(event, "another version of the object is the image's now")
        try:
            data = self.storage.get(key)
            text = self.step.read_text(data, image_id=record.id)
        except ObjectNotFound:
            return self._skipped(event, "the original is gone")
        except ImageRejected as e:
            return self._skipped(event, f"{e.reason}: {e.detail}")
        with self.db.connection() as conn:
            stored = store_text(conn, record.id, text, version=(record.object_etag, record.sequencer))
        if not stored:
            return self._skipped(event, "the image changed while it was read")
        logger.info("image text read", extra={"image_id": str(record.id), "chars": len(text or "")})
        return OcrOutcome.STORED

    @staticmethod
    def _skipped(event: ObjectEvent, why: str) -> OcrOutcome:
        logger.info("OCR skipped an event", extra={"key": event.key, "why": why})
        return OcrOutcome.SKIPPED

    def read_message(self, body: str, *, limits: Limits) -> list[OcrOutcome]:
        """One queue message: an object-created event (S3 or EventBridge), or an enrich message for the
        `ocr` step (`imagesearch enrich --missing --queue-url`). A malformed one is logged and dropped;
        ImageNotReadyYet and transient faults raise, so the queue retries the message."""
        try:
            payload = json.loads(body)
            if is_ours(payload) and payload[MESSAGE_KEY] == "enrich":
                report = run_message(
                    self.db, self.storage, [self.step], parse_enrich_message(payload), limits=limits
                )
                return [OcrOutcome.STORED] * report.stored + [OcrOutcome.SKIPPED] * len(report.skipped)
            if not isinstance(payload, dict) or is_ours(payload):
                raise UnrecognisedEvent("neither an object-created event nor an enrich message")
            events = parse_body(payload)
        except (MalformedMessage, UnrecognisedEvent, ValueError, KeyError, TypeError) as e:
            logger.error("unrecognised OCR message dropped", extra={"error": f"{type(e).__name__}: {e}"})
            return []
        return [self.read_event(event) for event in events]
