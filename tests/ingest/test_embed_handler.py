"""The embed function's handler, fed real event shapes, against real Postgres, storage and ONNX model."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.events import eventbridge_event, s3_event, sample, sqs_event
from support.images import encode, make_image, make_picture, png_header_claiming
from support.ingest import FlakyStorage, Handler

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.errors import StorageUnavailable
from imagesearch.local.server import local_app
from imagesearch.runtime import configure, get_runtime
from imagesearch.storage import ObjectStorage


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[TestClient]:
    """Both HTTP functions' routes, as the local stack serves them."""
    with TestClient(local_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def found_first_by_picture(api: TestClient, data: bytes) -> str:
    response = api.post("/search/image", files={"file": ("query.png", data)})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results, "nothing found"
    image_id: str = results[0]["id"]
    return image_id


def tombstoned(db: Database, image_id: uuid.UUID) -> bool:
    with db.connection() as conn:
        row = conn.execute("SELECT 1 FROM image_tombstones WHERE image_id = %s", (image_id,)).fetchone()
    return row is not None


def image_count(db: Database) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM images").fetchone()
    return int(row[0]) if row else 0


def pending_record(db: Database, *, name: str | None = None, **values: Any) -> tuple[uuid.UUID, str]:
    """A record as POST /uploads leaves it: pending, no bytes yet. Returns (id, key)."""
    image_id = uuid.uuid4()
    key = f"originals/{DEFAULT_TENANT_ID}/{name or image_id}"
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, filename, tags) VALUES (%s, %s, %s, %s, %s)",
            (image_id, DEFAULT_TENANT_ID, key, values.get("filename", "x.jpg"), values.get("tags", [])),
        )
    return image_id, key


def record(db: Database, image_id: uuid.UUID) -> dict[str, Any]:
    with db.connection() as conn:
        cur = conn.execute(
            "SELECT status, error, width, height, content_type, attempts FROM images WHERE id = %s",
            (image_id,),
        )
        row = cur.fetchone()
    assert row is not None
    return dict(zip(["status", "error", "width", "height", "content_type", "attempts"], row, strict=True))


def embedding_count(db: Database, image_id: uuid.UUID) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM embeddings WHERE image_id = %s", (image_id,)).fetchone()
    return int(row[0]) if row else 0


def put(storage: ObjectStorage, key: str, data: bytes, **metadata: str) -> dict[str, Any]:
    """Put an object and return its S3 notification (what the bucket would send)."""
    info = storage.put(key, data, content_type="application/octet-stream", metadata=metadata)
    return s3_event(key, size=info.size, etag=info.etag)


def test_sqs_batch_makes_the_image_ready_with_thumbnail_and_embedding(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db)
    notification = put(storage, key, make_image(fmt="JPEG", size=(640, 480)))

    result = handler(sqs_event(notification))

    assert result == {"batchItemFailures": []}
    assert record(db, image_id) | {"attempts": 1} == {
        "status": "ready",
        "error": None,
        "width": 640,
        "height": 480,
        "content_type": "image/jpeg",
        "attempts": 1,
    }
    assert embedding_count(db, image_id) == 1
    thumbnail = Image.open(io.BytesIO(storage.get(f"thumbnails/{DEFAULT_TENANT_ID}/{image_id}.webp")))
    assert thumbnail.format == "WEBP" and max(thumbnail.size) == 256 and thumbnail.size == (256, 192)


@pytest.mark.parametrize(("fmt", "content_type"), [("AVIF", "image/avif"), ("HEIF", "image/heic")])
def test_avif_and_heic_photos_become_ready_like_any_other(
    fmt: str, content_type: str, handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db, filename="IMG_0001.HEIC")
    handler(sqs_event(put(storage, key, make_image(fmt=fmt, size=(300, 200)))))
    assert record(db, image_id) | {"attempts": 1} == {
        "status": "ready",
        "error": None,
        "width": 300,
        "height": 200,
        "content_type": content_type,
        "attempts": 1,
    }
    assert embedding_count(db, image_id) == 1
    thumbnail = Image.open(io.BytesIO(storage.get(f"thumbnails/{DEFAULT_TENANT_ID}/{image_id}.webp")))
    assert thumbnail.size == (256, 171)


def test_the_same_event_twice_leaves_one_embedding(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db)
    notification = put(storage, key, make_image())

    handler(sqs_event(notification))
    handler(sqs_event(notification, notification))

    assert embedding_count(db, image_id) == 1
    assert record(db, image_id)["status"] == "ready"
    assert record(db, image_id)["attempts"] == 1  # the redeliveries were recognised, not re-processed


def test_direct_s3_and_eventbridge_shapes(handler: Handler, db: Database, storage: ObjectStorage) -> None:
    first, first_key = pending_record(db)
    second, second_key = pending_record(db)
    handler(put(storage, first_key, make_image(color="red")))
    info = storage.put(second_key, make_image(color="blue"), content_type="image/png")
    handler(eventbridge_event(second_key, size=info.size, etag=info.etag))
    assert record(db, first)["status"] == record(db, second)["status"] == "ready"


def test_s3_test_events_are_ignored(handler: Handler) -> None:
    assert handler(sample("sqs-s3-test-event.json")) == {"batchItemFailures": []}
    assert handler(sample("s3-test-event.json")) == {"outcomes": []}


def test_unrecognisable_messages_are_acknowledged_not_retried_forever(handler: Handler) -> None:
    assert handler(sqs_event({"what": "is this"})) == {"batchItemFailures": []}


def test_objects_put_by_other_tools_get_a_record_from_their_metadata(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    key = f"originals/{DEFAULT_TENANT_ID}/holiday 2026/my photo ü+1.jpg"
    notification = put(storage, key, make_image(fmt="JPEG"), title="Beach day", tags="sea, Sand")

    assert handler(sqs_event(notification)) == {"batchItemFailures": []}

    with db.connection() as conn:
        row = conn.execute(
            "SELECT status, filename, title, tags FROM images WHERE storage_key = %s", (key,)
        ).fetchone()
    assert row == ("ready", "my photo ü+1.jpg", "Beach day", ["sea", "sand"])


def test_objects_outside_originals_or_of_unknown_tenants_are_ignored_and_kept(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    keys = [
        f"thumbnails/{DEFAULT_TENANT_ID}/x.webp",
        f"originals/{uuid.uuid4()}/stray.png",
        f"originals/{uuid.uuid4()}/{uuid.uuid4()}",  # named as ours: a tenant created after a restored dump
        "originals/not-a-tenant/stray.png",
    ]
    events = [put(storage, key, make_image()) for key in keys]
    assert handler(sqs_event(*events)) == {"batchItemFailures": []}
    assert image_count(db) == 0
    assert all(storage.exists(key) for key in keys)


def cmyk_jpeg() -> bytes:
    return encode(make_picture(color="blue").convert("CMYK"), "JPEG")


def png16() -> bytes:
    import numpy as np

    ramp = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def palette_png_with_transparency() -> bytes:
    img = make_picture(color="green").convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return encode(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [make_picture(color=c) for c in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return encode(make_picture(size=(300, 100)), "JPEG", exif=exif)


def png_bomb() -> bytes:
    return png_header_claiming(100_000, 100_000)


BAD_AND_ODD_FILES: list[tuple[str, Callable[[], bytes], str, str | None]] = [
    ("truncated jpeg", lambda: make_image(fmt="JPEG", size=(300, 300))[:700], "failed", "truncated"),
    ("zero bytes", lambda: b"", "failed", "empty"),
    ("text named .jpg", lambda: b"hello, I am not a picture\n" * 10, "failed", "unsupported_format"),
    (
        "svg",
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "failed",
        "unsupported_format",
    ),
    ("html", lambda: b"<html><script>alert(1)</script></html>", "failed", "unsupported_format"),
    ("png claiming 100000x100000", png_bomb, "failed", "too_many_pixels"),
    ("cmyk jpeg", cmyk_jpeg, "ready", None),
    ("16-bit png", png16, "ready", None),
    ("palette png with transparency", palette_png_with_transparency, "ready", None),
    ("animated gif", animated_gif, "ready", None),
    ("exif-rotated jpeg", exif_rotated_jpeg, "ready", None),
]


def test_every_bad_file_gets_its_clear_outcome_and_the_batch_is_acknowledged(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    cases = []
    for name, make, _, _ in BAD_AND_ODD_FILES:
        image_id, key = pending_record(db, filename=name)
        cases.append((image_id, put(storage, key, make())))

    result = handler(sqs_event(*(notification for _, notification in cases)))

    assert result == {"batchItemFailures": []}  # bad files are never retried
    outcomes = {
        name: record(db, image_id) for (name, *_), (image_id, _) in zip(BAD_AND_ODD_FILES, cases, strict=True)
    }
    for name, _, status, reason in BAD_AND_ODD_FILES:
        assert outcomes[name]["status"] == status, (name, outcomes[name])
        if reason:
            assert outcomes[name]["error"].startswith(reason + ":"), (name, outcomes[name])
    assert (outcomes["exif-rotated jpeg"]["width"], outcomes["exif-rotated jpeg"]["height"]) == (100, 300)


def test_object_deleted_before_its_event_fails_the_record_with_a_reason(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db)
    notification = put(storage, key, make_image())
    storage.delete(key)

    assert handler(sqs_event(notification)) == {"batchItemFailures": []}
    assert record(db, image_id)["status"] == "failed"
    assert record(db, image_id)["error"].startswith("missing:")


def test_an_image_deleted_before_its_bytes_came_has_its_late_object_dropped(
    handler: Handler, api: TestClient, db: Database, storage: ObjectStorage
) -> None:
    # GIVEN a direct upload's pending record, deleted before the client's PUT lands
    image_id, key = pending_record(db)
    assert api.delete(f"/images/{image_id}").status_code == 204
    assert tombstoned(db, image_id)
    # WHEN the bytes land after all and their event comes
    notification = put(storage, key, make_image())
    assert handler(sqs_event(notification)) == {"batchItemFailures": []}
    # THEN the object goes (the tombstone says the image was deleted), and no record comes back
    assert not storage.exists(key)
    assert image_count(db) == 0
    # ... also when the event is delivered again (or replayed from the dead-letter queue)
    storage.put(key, make_image(), content_type="image/png")
    assert handler(sqs_event(notification)) == {"batchItemFailures": []}
    assert not storage.exists(key) and image_count(db) == 0


def test_an_original_whose_record_was_lost_is_adopted_under_its_id_and_found(
    handler: Handler, api: TestClient, db: Database, storage: ObjectStorage
) -> None:
    # GIVEN an original as the upload path stores it, whose record is not in a restored database (no
    # record, no tombstone)
    image_id = uuid.uuid4()
    key = f"originals/{DEFAULT_TENANT_ID}/{image_id}"
    data = make_image(color="yellow", shape="triangle")
    notification = put(storage, key, data, **{"image-id": str(image_id)})

    assert handler(sqs_event(notification)) == {"batchItemFailures": []}

    # THEN it is kept and adopted under its own id: ready, its thumbnail and vector made, found by its picture
    assert storage.exists(key)
    assert record(db, image_id) | {"attempts": 1} == {
        "status": "ready",
        "error": None,
        "width": 96,
        "height": 64,
        "content_type": "image/png",
        "attempts": 1,
    }
    assert embedding_count(db, image_id) == 1
    assert storage.exists(f"thumbnails/{DEFAULT_TENANT_ID}/{image_id}.webp")
    assert found_first_by_picture(api, data) == str(image_id)
    # Its title, description and tags were in the lost record only; the id is no file name.
    shown = api.get(f"/images/{image_id}").json()
    assert (shown["title"], shown["description"], shown["tags"], shown["filename"]) == (None, None, [], None)
    # The same event again is recognised, not processed again.
    assert handler(sqs_event(notification)) == {"batchItemFailures": []}
    assert record(db, image_id)["attempts"] == 1 and image_count(db) == 1


@pytest.mark.parametrize("other_original", ["kept", "lost"])
def test_an_adopted_original_with_the_bytes_of_another_image(
    other_original: str, handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    """Redundant bytes go; the only copy of the bytes stays (as a failed duplicate that names the other)."""
    data = make_image(color="green", shape="square")
    other, other_key = pending_record(db)
    handler(sqs_event(put(storage, other_key, data)))
    assert record(db, other)["status"] == "ready"
    if other_original == "lost":
        storage.delete(other_key)
    adopted = uuid.uuid4()
    key = f"originals/{DEFAULT_TENANT_ID}/{adopted}"

    assert handler(sqs_event(put(storage, key, data))) == {"batchItemFailures": []}

    assert record(db, other)["status"] == "ready"
    thumbnail = f"thumbnails/{DEFAULT_TENANT_ID}/{adopted}.webp"
    if other_original == "kept":  # the bytes are safe under the other image: this copy goes, for good
        assert not storage.exists(key) and not storage.exists(thumbnail)
        assert image_count(db) == 1 and tombstoned(db, adopted)
    else:  # the only copy: kept, and shown as a failed duplicate of the image whose original is gone
        assert storage.exists(key)
        assert record(db, adopted)["status"] == "failed"
        assert record(db, adopted)["error"] == f"duplicate: the same bytes as image {other}"
        assert not tombstoned(db, adopted)


class AnswerLostStorage:
    """The real storage, except that a put of an original stores the bytes and then fails, as when S3
    stored them but its answer never came back."""

    def __init__(self, inner: ObjectStorage) -> None:
        self._inner = inner

    def put(self, key: str, data: bytes, **kwargs: Any) -> Any:
        info = self._inner.put(key, data, **kwargs)
        if key.startswith("originals/"):
            raise StorageUnavailable("injected: the connection dropped before S3 answered")
        return info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_an_upload_whose_put_failed_leaves_a_tombstone_and_its_object_goes(
    handler: Handler, client: TestClient, db: Database, storage: ObjectStorage
) -> None:
    # GIVEN an upload whose put reached the store although the upload path saw it fail
    runtime = get_runtime()
    configure(runtime.settings, storage=AnswerLostStorage(runtime.storage))
    response = client.post("/images", files={"file": ("photo.png", make_image(color="blue"))})
    assert response.status_code == 503, response.text
    configure(runtime.settings, storage=storage)
    # THEN the record is gone and its tombstone stays: the client was told the upload failed
    (original,) = [info for info in storage.list("originals/")]
    image_id = uuid.UUID(original.key.rsplit("/", 1)[1])
    assert image_count(db) == 0 and tombstoned(db, image_id)
    # WHEN the object's event comes, the stray object goes
    assert handler(sqs_event(s3_event(original.key, size=original.size, etag=original.etag))) == {
        "batchItemFailures": []
    }
    assert not storage.exists(original.key) and image_count(db) == 0


def test_an_older_event_arriving_late_does_not_overwrite_a_newer_result(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db)
    old = put(storage, key, make_image(color="red"))
    old["Records"][0]["s3"]["object"]["sequencer"] = "0055AED6DCD90281E5"
    new = put(storage, key, make_image(color="blue", size=(50, 40)))
    new["Records"][0]["s3"]["object"]["sequencer"] = "0055AED6DCD90281E6"

    handler(sqs_event(new))
    handler(sqs_event(old))

    assert (record(db, image_id)["status"], record(db, image_id)["width"]) == ("ready", 50)
    assert record(db, image_id)["attempts"] == 1


def test_replaced_object_is_processed_again(handler: Handler, db: Database, storage: ObjectStorage) -> None:
    image_id, key = pending_record(db)
    handler(sqs_event(put(storage, key, make_image(size=(60, 40)))))
    handler(sqs_event(put(storage, key, make_image(size=(80, 40)))))
    assert record(db, image_id)["width"] == 80
    assert embedding_count(db, image_id) == 1


def test_a_transient_fault_fails_only_its_message_and_redelivery_succeeds(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    good, good_key = pending_record(db)
    flaky, flaky_key = pending_record(db)
    runtime = get_runtime()
    flaky_storage = FlakyStorage(runtime.storage, failing={flaky_key})
    configure(runtime.settings, storage=flaky_storage)
    event = sqs_event(
        put(storage, good_key, make_image(color="red")), put(storage, flaky_key, make_image(color="blue"))
    )

    result = handler(event)

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert (record(db, good)["status"], record(db, flaky)["status"]) == ("ready", "pending")

    flaky_storage.failing.clear()
    assert handler({"Records": [event["Records"][1]]}) == {"batchItemFailures": []}
    assert record(db, flaky)["status"] == "ready"
