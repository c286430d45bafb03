"""Back-fill messages (`imagesearch reindex --queue-url`) as the embed function takes them from the ingestion
queue: duplicates, images that are not ready or of another tenant, models that are gone, garbage, and
transient faults that fail only their own message."""

from __future__ import annotations

import copy
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.bundles import variant_bundle
from support.events import sqs_event
from support.ingest import FlakyStorage, Handler, embedded_image

from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import Database
from imagesearch.db import model_records as records
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.runtime import configure, get_runtime
from imagesearch.storage import ObjectStorage

MODEL_B = "demo-variant-b"


@pytest.fixture(scope="session")
def bundle_b(tmp_path_factory: pytest.TempPathFactory, model_bundle: Path) -> Path:
    return variant_bundle(model_bundle, tmp_path_factory.mktemp("model-b") / "bundle", MODEL_B)


def register(db: Database, bundle: Path | str, model_id: str = MODEL_B) -> None:
    """Register a model as `imagesearch reindex` does from another process (this registry is not told)."""
    with db.connection() as conn:
        records.register_model(conn, model_id=model_id, dim=64, bundle_uri=str(bundle))


def reindex_body(*image_ids: uuid.UUID, model_id: str = MODEL_B) -> dict[str, Any]:
    return {
        "imagesearch": "reindex",
        "version": 1,
        "model_id": model_id,
        "image_ids": [str(i) for i in image_ids],
    }


def vectors(db: Database, model_id: str) -> dict[uuid.UUID, tuple[Any, np.ndarray]]:
    """image id -> (created_at, vector) of every vector of `model_id`."""
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT image_id, created_at, embedding FROM embeddings WHERE model_id = %s", (model_id,)
        ).fetchall()
    return {row[0]: (row[1], row[2].to_numpy()) for row in rows}


def failures(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_a_message_backfills_its_images_and_a_duplicate_changes_nothing(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path
) -> None:
    ids = [embedded_image(handler, db, storage, color=c) for c in ("red", "green", "blue")]
    register(db, bundle_b)

    assert handler(sqs_event(reindex_body(*ids))) == {"batchItemFailures": []}
    backfilled = vectors(db, MODEL_B)
    assert set(backfilled) == set(ids)
    first = get_runtime().configured_model.model_id
    # B is another model: its vectors are its own (the image normalisation differs), beside A's
    assert not np.allclose(backfilled[ids[0]][1], vectors(db, first)[ids[0]][1])

    # WHEN the same message comes again (at-least-once), and one listing the images in another order
    assert handler(sqs_event(reindex_body(*ids), reindex_body(*reversed(ids)))) == {"batchItemFailures": []}
    # THEN nothing is written again
    assert vectors(db, MODEL_B).keys() == backfilled.keys()
    assert all(vectors(db, MODEL_B)[i][0] == backfilled[i][0] for i in ids)


def test_only_ready_images_are_backfilled_whatever_their_tenant(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path
) -> None:
    with db.connection() as conn:
        other_tenant = str(get_or_create_tenant(conn, "other").id)
    mine = embedded_image(handler, db, storage, color="red")
    theirs = embedded_image(handler, db, storage, color="blue", tenant_id=other_tenant)
    failed = embedded_image(handler, db, storage, color="green")
    deleted = embedded_image(handler, db, storage, color="yellow")
    pending = uuid.uuid4()
    with db.connection() as conn:
        conn.execute("UPDATE images SET status = 'failed' WHERE id = %s", (failed,))
        conn.execute("DELETE FROM images WHERE id = %s", (deleted,))
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'p.png')",
            (pending, DEFAULT_TENANT_ID, f"originals/{DEFAULT_TENANT_ID}/{pending}"),
        )
    register(db, bundle_b)

    never_existed = uuid.uuid4()
    result = handler(sqs_event(reindex_body(mine, theirs, failed, deleted, pending, never_existed)))

    assert result == {"batchItemFailures": []}
    assert set(vectors(db, MODEL_B)) == {mine, theirs}


def test_messages_for_a_model_that_is_gone_or_retired_are_acknowledged(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = embedded_image(handler, db, storage, color="red")
    register(db, bundle_b)
    first = get_runtime().configured_model.model_id
    with db.connection() as conn:  # B was active for a while, then A again: B is retired
        records.activate(conn, MODEL_B)
        records.activate(conn, first)

    with caplog.at_level(logging.WARNING):
        result = handler(sqs_event(reindex_body(image), reindex_body(image, model_id="no-such-model")))

    assert result == {"batchItemFailures": []}
    assert vectors(db, MODEL_B) == {} and vectors(db, "no-such-model") == {}
    dropped = [
        r for r in caplog.records if r.getMessage().startswith("back-fill message for a model that is gone")
    ]
    assert len(dropped) == 2


GARBAGE: list[Any] = [
    {"imagesearch": "reindex", "version": 2, "model_id": MODEL_B, "image_ids": [str(uuid.uuid4())]},
    {"imagesearch": "resize", "version": 1, "model_id": MODEL_B, "image_ids": [str(uuid.uuid4())]},
    {"imagesearch": "reindex", "version": 1, "model_id": MODEL_B},
    {"imagesearch": "reindex", "version": 1, "model_id": MODEL_B, "image_ids": ["not-a-uuid"]},
    {"imagesearch": "reindex", "version": 1, "model_id": MODEL_B, "image_ids": []},
    {"imagesearch": "reindex", "version": 1, "model_id": MODEL_B, "image_ids": [str(uuid.uuid4())] * 101},
    {"imagesearch": "reindex", "version": 1, "model_id": "../etc", "image_ids": [str(uuid.uuid4())]},
    {"imagesearch": "reindex", "version": 1, "model_id": MODEL_B, "image_ids": "all"},
    {"imagesearch": None},
]
NOT_JSON_OBJECTS = ["not json", "[1, 2]", "null", '"reindex"']


def test_malformed_messages_are_dropped_and_logged_and_the_rest_of_the_batch_proceeds(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = embedded_image(handler, db, storage, color="red")
    register(db, bundle_b)
    event = sqs_event(*GARBAGE, reindex_body(image))
    for body in NOT_JSON_OBJECTS:
        record = copy.deepcopy(event["Records"][0])
        record["messageId"], record["body"] = str(uuid.uuid4()), body
        event["Records"].append(record)

    with caplog.at_level(logging.ERROR):
        result = handler(event)

    assert result == {"batchItemFailures": []}  # acknowledged: retrying would never help
    assert set(vectors(db, MODEL_B)) == {image}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert messages.count("malformed back-fill message dropped") == len(GARBAGE)
    assert messages.count("unrecognised message dropped") == len(NOT_JSON_OBJECTS)


def test_a_storage_fault_fails_only_its_message_which_redelivery_finishes(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path
) -> None:
    flaky, fine, other = (embedded_image(handler, db, storage, color=c) for c in ("red", "green", "blue"))
    register(db, bundle_b)
    runtime = get_runtime()
    flaky_storage = FlakyStorage(runtime.storage, failing={f"originals/{DEFAULT_TENANT_ID}/{flaky}"})
    configure(runtime.settings, storage=flaky_storage)
    event = sqs_event(reindex_body(flaky, fine), reindex_body(other))

    result = handler(event)

    # THEN only the first message comes back, and what it could do is kept
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert set(vectors(db, MODEL_B)) == {fine, other}
    flaky_storage.failing.clear()
    assert handler({"Records": [event["Records"][0]]}) == {"batchItemFailures": []}
    assert set(vectors(db, MODEL_B)) == {flaky, fine, other}


def test_a_bundle_that_cannot_be_opened_fails_the_message_until_it_can(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path, tmp_path: Path
) -> None:
    image = embedded_image(handler, db, storage, color="red")
    register(db, tmp_path / "not-uploaded-yet")
    event = sqs_event(reindex_body(image))

    assert failures(handler(event)) == [event["Records"][0]["messageId"]]  # retried, then the DLQ

    register(db, bundle_b)  # the bundle's location corrected (reindex again with the right URI)
    assert handler(event) == {"batchItemFailures": []}
    assert set(vectors(db, MODEL_B)) == {image}


def test_the_database_down_fails_the_message(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path, postgres: EmbeddedPostgres
) -> None:
    image = embedded_image(handler, db, storage, color="red")
    register(db, bundle_b)
    event = sqs_event(reindex_body(image))
    postgres.stop()
    try:
        result = handler(event)
    finally:
        postgres.start()
    assert failures(result) == [event["Records"][0]["messageId"]]
    assert handler(event) == {"batchItemFailures": []}
    assert set(vectors(get_runtime().database, MODEL_B)) == {image}  # the test's pool holds dead connections


def test_an_upload_saved_after_a_model_joined_gets_its_vector_too(
    handler: Handler, db: Database, storage: ObjectStorage, bundle_b: Path
) -> None:
    # GIVEN a warm embed function, whose list of models (re-read every minute) holds only A
    first = get_runtime().configured_model.model_id
    embedded_image(handler, db, storage, color="red")
    assert [m.model_id for m in get_runtime().models.embedding_models()] == [first]
    # WHEN the operator's reindex registers B (another process), then an upload arrives at once
    register(db, bundle_b)
    register(db, "/nowhere/broken-bundle", model_id="broken-model")
    image = embedded_image(handler, db, storage, color="blue")
    # THEN it gets B's vector as well (a back-fill that had already passed it would miss it otherwise);
    # a model whose bundle cannot be opened here does not hold it up
    assert image in vectors(db, first) and image in vectors(db, MODEL_B)
    assert image not in vectors(db, "broken-model")
    assert [m.model_id for m in get_runtime().models.embedding_models()] == [first, MODEL_B]
