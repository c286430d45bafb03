"""`imagesearch enrich --missing`: back-fills what ingestion derives (EXIF here; each step's own tests
elsewhere) for images ingested before it did: in process, or through a queue for the embed function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support.events import sqs_event
from support.exif import photo_with_exif
from support.images import make_image
from support.ingest import Handler, embedded_image

from imagesearch.cli.main import main
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.ingest.enrich import EnrichMessage
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import configure
from imagesearch.storage import ObjectStorage


def forget_exif(db: Database) -> None:
    """As images ingested before migration 0007 are: no EXIF columns, never read."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE images SET exif_read_at = NULL, taken_at = NULL, taken_at_local = NULL, "
            "camera_make = NULL, camera_model = NULL, lens = NULL, latitude = NULL, longitude = NULL"
        )


def exif_columns(db: Database) -> dict[str, tuple]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT storage_key, camera_make, taken_at_local IS NOT NULL, latitude, exif_read_at IS NOT NULL "
            "FROM images"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_enrich_fills_in_what_was_never_read_and_is_idempotent(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canon = photo_with_exif(make="Canon", taken="2024:07:14 10:30:00", gps=(48.8584, 2.2945))
    located = embedded_image(handler, db, storage, data=canon)
    plain = embedded_image(handler, db, storage, data=make_image(color="blue"))
    gone = embedded_image(handler, db, storage, data=photo_with_exif(make="Sony", color="green"))
    forget_exif(db)
    with db.connection() as conn:
        keys = dict(conn.execute("SELECT id, storage_key FROM images").fetchall())
    storage.delete(keys[gone])

    assert main(["enrich", "--missing"]) == 0

    after = exif_columns(db)
    assert after[keys[located]][:3] == ("Canon", True, pytest.approx(48.8584, abs=1e-5))
    assert after[keys[located]][3] and after[keys[plain]] == (None, False, None, True)  # read: nothing there
    assert after[keys[gone]] == (None, False, None, False)  # left for a later run
    out = capsys.readouterr().out
    assert "exif: enriched 2 images; 1 left" in out and f"skipped: {gone}" in out

    assert main(["enrich", "--missing"]) == 0  # again: only what is left, and nothing changes
    assert exif_columns(db) == after
    assert "exif: enriched 0 images; 1 left" in capsys.readouterr().out


def test_new_uploads_need_no_enrichment(
    settings: Settings, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    embedded_image(handler, db, storage, data=photo_with_exif(make="Canon"))
    assert all(values[3] for values in exif_columns(db).values())  # exif_read_at set on ingestion


def test_enrich_rejects_a_step_this_deployment_does_not_run(settings: Settings) -> None:
    with pytest.raises(SystemExit, match="no step nonsense"):
        main(["enrich", "--missing", "--step", "nonsense"])
    with pytest.raises(SystemExit, match="--batch-size"):
        main(["enrich", "--missing", "--batch-size", "0"])


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs")
        yield sqs, sqs.create_queue(QueueName="ingest")["QueueUrl"]


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_through_the_queue_the_embed_function_enriches_and_a_redelivery_changes_nothing(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    queue: tuple[Any, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs, queue_url = queue
    for n in range(3):
        embedded_image(handler, db, storage, data=photo_with_exif(make=f"Maker{n}", gps=(38.7 + n, -9.1)))
    forget_exif(db)

    assert main(["enrich", "--missing", "--step", "exif", "--queue-url", queue_url, "--batch-size", "2"]) == 0
    assert f"exif: sent 3 image ids to {queue_url}" in capsys.readouterr().out
    bodies = drain(sqs, queue_url)
    messages = [EnrichMessage.model_validate(body) for body in bodies]
    assert sorted(len(m.image_ids) for m in messages) == [1, 2] and {m.step for m in messages} == {"exif"}
    assert all(values[3] is False for values in exif_columns(db).values())  # nothing read yet

    embed = load_function("embed").handler
    assert embed(sqs_event(*bodies), LocalLambdaContext()) == {"batchItemFailures": []}
    after = exif_columns(db)
    assert sorted(values[0] for values in after.values()) == ["Maker0", "Maker1", "Maker2"]

    # Delivered again (at least once): nothing is left to do, and nothing changes.
    assert embed(sqs_event(*bodies), LocalLambdaContext()) == {"batchItemFailures": []}
    assert exif_columns(db) == after
    assert main(["enrich", "--missing", "--step", "exif", "--queue-url", queue_url]) == 0
    assert drain(sqs, queue_url) == []


def test_each_step_sends_as_many_images_a_message_as_its_function_gets_through(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    handler: Handler,
    queue: tuple[Any, str],
) -> None:
    """OCR takes seconds an image: its messages are small, so the OCR function's batch of four stays within
    its timeout; the embed function's steps take 50."""
    sqs, queue_url = queue
    for n in range(7):
        embedded_image(handler, db, storage, color="red", size=(40 + n, 40))  # read with OCR off
    configure(settings.model_copy(update={"ocr": True}))

    assert main(["enrich", "--missing", "--step", "ocr", "--step", "phash", "--queue-url", queue_url]) == 0

    messages = [EnrichMessage.model_validate(body) for body in drain(sqs, queue_url)]
    sizes = {step: sorted(len(m.image_ids) for m in messages if m.step == step) for step in ("ocr", "phash")}
    assert sizes == {"ocr": [2, 5], "phash": []}  # ingestion hashed them all: no phash left to send
    assert main(["enrich", "--missing", "--step", "ocr", "--queue-url", queue_url, "--batch-size", "7"]) == 0
    assert [len(EnrichMessage.model_validate(body).image_ids) for body in drain(sqs, queue_url)] == [7]


def test_a_malformed_enrich_message_is_dropped_and_a_step_of_another_function_is_not_run(
    settings: Settings, db: Database, storage: ObjectStorage, handler: Handler
) -> None:
    image = embedded_image(handler, db, storage, data=photo_with_exif(make="Canon"))
    forget_exif(db)
    bad = {"imagesearch": "enrich", "version": 1, "step": "exif", "image_ids": ["not-a-uuid"]}
    elsewhere = {"imagesearch": "enrich", "version": 1, "step": "ocr", "image_ids": [str(image)]}

    result = load_function("embed").handler(sqs_event(bad, elsewhere), LocalLambdaContext())

    assert result == {"batchItemFailures": []}  # acknowledged: retrying cannot help
    assert all(values[3] is False for values in exif_columns(db).values())
