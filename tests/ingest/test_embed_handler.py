"""The embed function's handler, fed real event shapes, against real Postgres, storage and ONNX model."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from support.events import eventbridge_event, s3_event, sample, sqs_event
from support.images import encode, make_image, make_picture, png_header_claiming

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.errors import StorageUnavailable
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import configure, get_runtime
from imagesearch.storage import ObjectStorage

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def handler(settings: Settings, db: Database) -> Handler:
    function = load_function("embed").handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = function(event, LocalLambdaContext(function_name="embed"))
        return result

    return invoke


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


def test_objects_outside_originals_or_of_unknown_tenants_are_ignored(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    events = [
        put(storage, f"thumbnails/{DEFAULT_TENANT_ID}/x.webp", make_image()),
        put(storage, f"originals/{uuid.uuid4()}/stray.png", make_image()),
        put(storage, "originals/not-a-tenant/stray.png", make_image()),
    ]
    assert handler(sqs_event(*events)) == {"batchItemFailures": []}
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (0,)


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


def test_record_deleted_before_the_event_drops_the_late_object(
    handler: Handler, db: Database, storage: ObjectStorage
) -> None:
    image_id, key = pending_record(db)
    notification = put(storage, key, make_image())
    with db.connection() as conn:
        conn.execute("DELETE FROM images WHERE id = %s", (image_id,))

    assert handler(sqs_event(notification)) == {"batchItemFailures": []}
    assert not storage.exists(key)
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (0,)


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


class FlakyStorage:
    """The real storage, except that downloads of some keys fail as if S3 answered 503."""

    def __init__(self, inner: ObjectStorage, failing: set[str]) -> None:
        self._inner = inner
        self.failing = failing

    def get(self, key: str) -> bytes:
        if key in self.failing:
            raise StorageUnavailable("injected: S3 answered 503")
        return self._inner.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


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
