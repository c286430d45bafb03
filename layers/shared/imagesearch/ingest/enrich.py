"""Back-fill what ingestion reads from originals (EXIF) for ready images it was never read for.

`imagesearch enrich --missing` runs it in process; idempotent and resumable: an image counts as done once
its `exif_read_at` is set, whatever its EXIF held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from imagesearch.db import Database
from imagesearch.errors import ObjectNotFound
from imagesearch.images import repository
from imagesearch.ingest.processor import read_photo_exif
from imagesearch.storage import ObjectStorage

PAGE = 200


@dataclass
class EnrichReport:
    read: int = 0
    skipped: list[str] = field(default_factory=list)


def missing_count(db: Database) -> int:
    """Ready images whose EXIF was never read."""
    with db.connection() as conn:
        return repository.exif_unread_count(conn)


def enrich_missing(
    db: Database,
    storage: ObjectStorage,
    *,
    store_location: bool,
    progress: Callable[[int], object] = lambda n: None,
) -> EnrichReport:
    """Read and store the EXIF of every ready image that lacks it; originals gone meanwhile are skipped."""
    report = EnrichReport()
    after: UUID | None = None
    while True:
        with db.connection() as conn:
            page = repository.exif_unread(conn, after=after, limit=PAGE)
        if not page:
            return report
        for image_id, key in page:
            after = image_id
            try:
                data = storage.get(key)
            except ObjectNotFound:
                report.skipped.append(f"{image_id}: the original is gone")
                progress(1)
                continue
            exif = read_photo_exif(data, store_location=store_location, image_id=str(image_id))
            with db.connection() as conn:
                # Ingestion may have read a replacement meanwhile: its values stand.
                if repository.set_exif(conn, image_id, exif, only_unread=True):
                    report.read += 1
            progress(1)
