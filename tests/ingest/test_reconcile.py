"""`imagesearch reconcile`: lost events and stray objects are put right; a dry run changes nothing."""

from __future__ import annotations

import uuid

from support.images import make_image

from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import Database
from imagesearch.ingest.processor import Ingestor
from imagesearch.ingest.reconcile import reconcile
from imagesearch.storage import ObjectStorage

TENANT = DEFAULT_TENANT_ID


def pending(db: Database, key: str, *, age_seconds: int) -> uuid.UUID:
    image_id = uuid.UUID(key.rsplit("/", 1)[-1]) if key.count("/") == 2 else uuid.uuid4()
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, updated_at) "
            "VALUES (%s, %s, %s, now() - make_interval(secs => %s))",
            (image_id, TENANT, key, age_seconds),
        )
    return image_id


def status(db: Database, image_id: uuid.UUID) -> tuple[str, str | None]:
    with db.connection() as conn:
        row = conn.execute("SELECT status, error FROM images WHERE id = %s", (image_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def test_reconcile_repairs_lost_events_and_stray_objects(
    db: Database, storage: ObjectStorage, ingestor: Ingestor
) -> None:
    # A pending record whose event was lost, one whose bytes never came, and one still within its time.
    lost_event = uuid.uuid4()
    storage.put(f"originals/{TENANT}/{lost_event}", make_image(color="red"), content_type="image/png")
    pending(db, f"originals/{TENANT}/{lost_event}", age_seconds=3600)
    never_came = pending(db, f"originals/{TENANT}/{uuid.uuid4()}", age_seconds=3600)
    recent = pending(db, f"originals/{TENANT}/{uuid.uuid4()}", age_seconds=5)
    # An object of a deleted image, its thumbnail, and an object another tool put there.
    orphan = uuid.uuid4()
    storage.put(f"originals/{TENANT}/{orphan}", make_image(), content_type="image/png")
    storage.put(f"thumbnails/{TENANT}/{orphan}.webp", b"thumb", content_type="image/webp")
    storage.put(f"originals/{TENANT}/scans/receipt.png", make_image(color="blue"), content_type="image/png")

    dry = reconcile(db, storage, ingestor, pending_timeout_seconds=900, dry_run=True)
    assert (dry.missing_failed, dry.orphans_deleted, dry.foreign_found, dry.thumbnails_deleted) == (
        1,
        1,
        1,
        1,
    )
    assert status(db, lost_event) == ("pending", None) and storage.exists(f"originals/{TENANT}/{orphan}")

    report = reconcile(db, storage, ingestor, pending_timeout_seconds=900)

    assert report.errors == []
    assert status(db, lost_event) == ("ready", None)
    assert status(db, never_came)[0] == "failed" and "no object arrived" in (status(db, never_came)[1] or "")
    assert status(db, recent) == ("pending", None)
    assert not storage.exists(f"originals/{TENANT}/{orphan}")
    assert not storage.exists(f"thumbnails/{TENANT}/{orphan}.webp")
    with db.connection() as conn:
        row = conn.execute(
            "SELECT status, filename FROM images WHERE storage_key = %s",
            (f"originals/{TENANT}/scans/receipt.png",),
        ).fetchone()
    assert row == ("ready", "receipt.png")

    again = reconcile(db, storage, ingestor, pending_timeout_seconds=900)
    assert (again.missing_failed, again.orphans_deleted, again.foreign_found, again.thumbnails_deleted) == (
        0,
        0,
        0,
        0,
    )
