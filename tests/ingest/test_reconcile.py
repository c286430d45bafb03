"""`imagesearch reconcile`: lost events and stray objects are put right; a dry run changes nothing."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from support.images import make_image

from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import Database
from imagesearch.images import repository
from imagesearch.ingest.processor import Ingestor
from imagesearch.ingest.reconcile import ReconcileReport, reconcile
from imagesearch.local.server import local_app
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


def deleted_image(db: Database) -> uuid.UUID:
    """An image whose record was deleted (DELETE /images/{id}) while storage was down: its objects stay."""
    image_id = pending(db, f"originals/{TENANT}/{uuid.uuid4()}", age_seconds=0)
    with db.connection() as conn:
        assert repository.delete(conn, uuid.UUID(TENANT), image_id) is not None
    return image_id


def counts(report: ReconcileReport) -> dict[str, int]:
    """Every count of the report but the processed outcomes."""
    return {name: value for name, value in vars(report).items() if isinstance(value, int)}


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
    orphan = deleted_image(db)
    storage.put(f"originals/{TENANT}/{orphan}", make_image(), content_type="image/png")
    storage.put(f"thumbnails/{TENANT}/{orphan}.webp", b"thumb", content_type="image/webp")
    storage.put(f"originals/{TENANT}/scans/receipt.png", make_image(color="blue"), content_type="image/png")

    dry = reconcile(db, storage, ingestor, pending_timeout_seconds=900, dry_run=True)
    assert counts(dry) == counts(
        ReconcileReport(missing_failed=1, orphans_deleted=1, foreign_found=1, thumbnails_deleted=1)
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
    assert counts(again) == counts(ReconcileReport())


def test_reconcile_adopts_originals_whose_record_was_lost_and_deletes_nothing_else(
    db: Database, storage: ObjectStorage, ingestor: Ingestor
) -> None:
    # GIVEN, as after a restore from an older dump: an original named by our id with no record and no
    # tombstone (with the thumbnail it had), and an original of a tenant the restored database lacks
    lost = uuid.uuid4()
    data = make_image(color="yellow", shape="square")
    storage.put(
        f"originals/{TENANT}/{lost}", data, content_type="image/png", metadata={"image-id": str(lost)}
    )
    storage.put(f"thumbnails/{TENANT}/{lost}.webp", b"old thumb", content_type="image/webp")
    new_tenant, its_image = uuid.uuid4(), uuid.uuid4()
    storage.put(f"originals/{new_tenant}/{its_image}", make_image(color="red"), content_type="image/png")
    storage.put(f"thumbnails/{new_tenant}/{its_image}.webp", b"thumb", content_type="image/webp")
    listing = {info.key for info in storage.list("")}
    assert len(listing) == 4

    dry = reconcile(db, storage, ingestor, pending_timeout_seconds=900, dry_run=True)
    assert counts(dry) == counts(ReconcileReport(orphans_adopted=1, unknown_tenant=1))
    with db.connection() as conn:
        assert not repository.exists(conn, image_id=lost)

    report = reconcile(db, storage, ingestor, pending_timeout_seconds=900)

    # THEN the original is adopted under its id, processed, and found by its picture; nothing is deleted
    assert report.errors == [] and report.redriven == {"ready": 1}
    assert counts(report) == counts(ReconcileReport(orphans_adopted=1, unknown_tenant=1))
    assert status(db, lost) == ("ready", None)
    assert {info.key for info in storage.list("")} == listing
    assert storage.get(f"thumbnails/{TENANT}/{lost}.webp") != b"old thumb"  # made again from the original
    with TestClient(local_app(), raise_server_exceptions=False) as api:
        found = api.post("/search/image", files={"file": ("query.png", data)}).json()["results"]
    assert found[0]["id"] == str(lost)

    again = reconcile(db, storage, ingestor, pending_timeout_seconds=900)
    assert counts(again) == counts(ReconcileReport(unknown_tenant=1)) and again.redriven == {}
