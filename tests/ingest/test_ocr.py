"""The OCR function and the `ocr` enrichment step: text of ready images only, the version that was read.

Each test gives the OCR function the same object-created events the embed function gets, in the orders the
queues can deliver them (the OCR queue's event may come first, or after the object was replaced).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.events import s3_event, sqs_event
from support.ingest import Handler

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.demo.text_pictures import png_bytes, text_picture
from imagesearch.enrichment.ocr import OcrEngine
from imagesearch.images import repository
from imagesearch.ingest.enrich import EnrichMessage, enrich_missing, pending_count
from imagesearch.ingest.ocr import OcrStep
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import Runtime, configure
from imagesearch.storage import ObjectStorage


@pytest.fixture
def ocr_runtime(settings: Settings, db: Database) -> Iterator[Runtime]:
    """The process's runtime with the `ocr` setting on (the tests' default is off: tests/conftest.py)."""
    yield configure(settings.model_copy(update={"ocr": True}))


@pytest.fixture
def ocr(ocr_runtime: Runtime) -> Handler:
    """The OCR function's handler, called as Lambda calls it."""
    return _handler("ocr")


def _handler(name: str) -> Handler:
    function = load_function(name).handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = function(event, LocalLambdaContext(function_name=name))
        return result

    return invoke


class Upload:
    """An image record and its original, as an upload leaves them; `put` writes (or replaces) the object
    and returns its object-created event, as an SQS batch."""

    def __init__(self, db: Database, storage: ObjectStorage) -> None:
        self.db, self.storage = db, storage
        self.id = uuid.uuid4()
        self.key = f"originals/{DEFAULT_TENANT_ID}/{self.id}"
        self.versions = 0
        with db.connection() as conn:
            conn.execute(
                "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'x.png')",
                (self.id, DEFAULT_TENANT_ID, self.key),
            )

    def put(self, data: bytes) -> dict[str, Any]:
        self.versions += 1
        info = self.storage.put(self.key, data, content_type="image/png")
        sequencer = f"{0x0A1B2C3D4E5F678900 + self.versions:X}"
        return sqs_event(s3_event(self.key, size=info.size, etag=info.etag, sequencer=sequencer))

    def record(self) -> repository.ImageRecord:
        with self.db.connection() as conn:
            record = repository.get(conn, uuid.UUID(DEFAULT_TENANT_ID), self.id)
        assert record is not None
        return record


def words(*text: str) -> bytes:
    return png_bytes(text_picture(list(text), size=36, seed=5))


def failures(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_the_text_of_an_embedded_image_is_stored(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    event = upload.put(words("Harbour", "bakery"))
    assert failures(handler(event)) == []

    assert failures(ocr(event)) == []

    record = upload.record()
    assert record.ocr_at is not None
    assert record.ocr_text is not None
    assert {"harbour", "bakery"} <= set(record.ocr_text.lower().split())


def test_an_event_before_the_embedding_is_retried_until_the_image_is_ready(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    event = upload.put(words("Lighthouse"))

    # GIVEN the OCR queue delivers first: the message fails alone and comes back
    assert failures(ocr(event)) == [event["Records"][0]["messageId"]]
    assert upload.record().ocr_at is None
    # WHEN the image is embedded, THEN the redelivery reads it
    assert failures(handler(event)) == []
    assert failures(ocr(event)) == []
    assert "lighthouse" in (upload.record().ocr_text or "").lower()


def test_a_failed_image_is_skipped(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    event = upload.put(b"not an image at all")
    handler(event)
    assert upload.record().status == "failed"

    assert failures(ocr(event)) == []
    assert upload.record().ocr_at is None


def test_a_deleted_image_is_skipped(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    event = upload.put(words("Museum"))
    handler(event)
    with db.connection() as conn:
        repository.delete(conn, uuid.UUID(DEFAULT_TENANT_ID), upload.id)

    assert failures(ocr(event)) == []
    with db.connection() as conn:
        assert not repository.exists(conn, image_id=upload.id)


def test_a_replaced_object_gets_its_own_text_never_its_predecessors(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    first = upload.put(words("Bakery"))
    assert failures(handler(first)) == []
    # GIVEN the object is replaced before the OCR queue delivers the first event
    second = upload.put(words("Garden"))

    # the new version is not embedded yet: its event waits, the first one's is stale once it is
    assert failures(ocr(second)) == [second["Records"][0]["messageId"]]
    assert failures(handler(second)) == []
    assert failures(ocr(first)) == []
    assert upload.record().ocr_at is None
    assert failures(ocr(second)) == []

    text = (upload.record().ocr_text or "").lower()
    assert "garden" in text and "bakery" not in text


def test_a_picture_without_text_is_read_and_holds_none(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler
) -> None:
    upload = Upload(db, storage)
    event = upload.put(png_bytes(text_picture([], kind="gradient")))
    handler(event)

    assert failures(ocr(event)) == []
    record = upload.record()
    assert record.ocr_at is not None and record.ocr_text is None


def test_with_the_setting_off_the_function_reads_nothing(
    db: Database, storage: ObjectStorage, handler: Handler, settings: Settings
) -> None:
    assert not settings.ocr
    upload = Upload(db, storage)
    event = upload.put(words("Station"))
    handler(event)

    assert failures(_handler("ocr")(event)) == []
    assert upload.record().ocr_at is None


def test_the_step_back_fills_ready_images_once(
    db: Database, storage: ObjectStorage, handler: Handler, ocr_runtime: Runtime
) -> None:
    uploads = [Upload(db, storage) for _ in range(2)]
    for upload, word in zip(uploads, ("Pharmacy", "Airport"), strict=True):
        handler(upload.put(words(word)))
    step = OcrStep(OcrEngine(threads=1), max_pixels=ocr_runtime.settings.max_image_pixels)
    assert pending_count(db, step) == 2

    report = enrich_missing(db, storage, step, limits=ocr_runtime.enrich_limits)

    assert report.stored == 2 and report.skipped == []
    assert "pharmacy" in (uploads[0].record().ocr_text or "").lower()
    assert "airport" in (uploads[1].record().ocr_text or "").lower()
    assert pending_count(db, step) == 0
    assert enrich_missing(db, storage, step, limits=ocr_runtime.enrich_limits).stored == 0


def test_the_function_runs_enrich_messages_for_its_step(
    db: Database, storage: ObjectStorage, handler: Handler, ocr: Handler, ocr_runtime: Runtime
) -> None:
    upload = Upload(db, storage)
    handler(upload.put(words("Concert")))
    assert "ocr" in [step.name for step in ocr_runtime.enrich_steps(ocr=True)]

    message = EnrichMessage(step="ocr", image_ids=[upload.id])
    assert failures(ocr(sqs_event(message.model_dump(mode="json")))) == []

    assert "concert" in (upload.record().ocr_text or "").lower()
