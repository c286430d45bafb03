"""What the ingestion tests share: a storage that fails on purpose, and an image embedded the real way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import Database
from imagesearch.errors import StorageUnavailable
from imagesearch.ingest.events import ObjectEvent
from imagesearch.ingest.processor import Outcome
from imagesearch.runtime import get_runtime
from imagesearch.storage import ObjectStorage
from support.events import s3_event, sqs_event
from support.images import make_image

# The embed function's handler as the tests call it: an event in, its result out.
Handler = Callable[[dict[str, Any]], dict[str, Any]]


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


def embedded_image(
    embed: Handler,
    db: Database,
    storage: ObjectStorage,
    *,
    tenant_id: str = DEFAULT_TENANT_ID,
    data: bytes | None = None,
    **picture: Any,
) -> uuid.UUID:
    """An image record and its original, embedded by `embed` (the embed function's handler, given an SQS
    batch) from the object-created event, as an upload leaves it: these bytes, or a picture as make_image
    draws it from `picture`."""
    image_id = uuid.uuid4()
    key = f"originals/{tenant_id}/{image_id}"
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'x.png')",
            (image_id, tenant_id, key),
        )
    info = storage.put(key, make_image(**picture) if data is None else data, content_type="image/png")
    assert embed(sqs_event(s3_event(key, size=info.size, etag=info.etag))) == {"batchItemFailures": []}
    return image_id


def ingest_pending(db: Database) -> list[Outcome]:
    """What the embed function does with the object-created events of every pending image."""
    with db.connection() as conn:
        keys = [row[0] for row in conn.execute("SELECT storage_key FROM images WHERE status = 'pending'")]
    storage = get_runtime().storage
    events = [ObjectEvent("local", k, None, storage.head(k).etag, None, "ObjectCreated:Put") for k in keys]
    return get_runtime().ingestor.ingest(events)
