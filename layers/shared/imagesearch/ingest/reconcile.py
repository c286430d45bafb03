"""`imagesearch reconcile`: make records and objects agree again after lost events or partial failures.

- a record `pending` past the timeout whose object exists is processed now (its event was lost);
- a record `pending` past the timeout with no object is `failed` (the direct upload never came);
- an object under originals/ named by one of our ids but with no record: if the image's tombstone says it
  was deleted (while storage was down), the object (and its thumbnail) goes; without a tombstone its record
  was lost (a restore from an older dump) and the object is adopted under its id, then processed;
- an object under originals/ put there by another tool (any other name) gets its record and is processed;
- objects under originals/ of a tenant the database does not know are left alone;
- a thumbnail whose image is gone (and not being adopted) is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

from imagesearch.db import Database
from imagesearch.errors import ObjectNotFound
from imagesearch.images import object_keys, repository
from imagesearch.ingest import strays
from imagesearch.ingest.processor import Ingestor, Outcome, Prepared
from imagesearch.ingest.strays import Stray
from imagesearch.storage import ObjectStorage
from imagesearch.webhooks import events, outbox

Progress = Callable[[str], object]


@dataclass
class ReconcileReport:
    redriven: dict[str, int] = field(default_factory=dict)  # outcome -> count
    missing_failed: int = 0
    orphans_deleted: int = 0  # originals of deleted images (tombstoned)
    orphans_adopted: int = 0  # id-named originals whose record was lost: adopted under their id
    foreign_found: int = 0
    unknown_tenant: int = 0  # originals of tenants the database does not know: left alone
    thumbnails_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome | str) -> None:
        self.redriven[str(outcome)] = self.redriven.get(str(outcome), 0) + 1


def reconcile(
    db: Database,
    storage: ObjectStorage,
    ingestor: Ingestor,
    *,
    pending_timeout_seconds: float,
    dry_run: bool = False,
    progress: Progress = lambda _: None,
) -> ReconcileReport:
    report = ReconcileReport()
    _stuck_pending(db, storage, ingestor, pending_timeout_seconds, dry_run, report, progress)
    _stray_objects(db, storage, ingestor, dry_run, report, progress)
    return report


def _stuck_pending(
    db: Database,
    storage: ObjectStorage,
    ingestor: Ingestor,
    timeout: float,
    dry_run: bool,
    report: ReconcileReport,
    progress: Progress,
) -> None:
    with db.connection() as conn:
        rows = repository.pending(conn, unchanged_for_seconds=timeout)
    for image_id, key in rows:
        progress(key)
        try:
            info = storage.head(key)
        except ObjectNotFound:
            report.missing_failed += 1
            if not dry_run:
                reason = f"missing: no object arrived within {int(timeout)} seconds"
                with db.connection() as conn:
                    tenant_id = repository.fail_pending(conn, image_id, reason)
                    failed = (
                        outbox.record(conn, events.failed(tenant_id, image_id, reason)) if tenant_id else None
                    )
                if failed is not None:
                    ingestor.publisher.publish([failed])
            continue
        if dry_run:
            report.count("would process")
            continue
        _run(ingestor, [ingestor.prepare_key(key, etag=info.etag)], report)


def _stray_objects(
    db: Database,
    storage: ObjectStorage,
    ingestor: Ingestor,
    dry_run: bool,
    report: ReconcileReport,
    progress: Progress,
) -> None:
    todo: list[Prepared] = []
    kept: set[UUID] = set()  # ids of originals that stay: their thumbnails stay too
    for info in storage.list(object_keys.ORIGINALS):
        progress(info.key)
        parsed = object_keys.parse_original_key(info.key)
        if parsed is None or _has_record(db, storage_key=info.key):
            continue
        with db.connection() as conn:
            stray = strays.classify(conn, parsed)
        if stray is Stray.DELETED:
            assert parsed.image_id is not None
            report.orphans_deleted += 1
            if not dry_run:
                _delete(
                    storage, [info.key, object_keys.thumbnail_key(parsed.tenant_id, parsed.image_id)], report
                )
            continue
        if parsed.image_id is not None:
            kept.add(parsed.image_id)
        if stray is Stray.UNKNOWN_TENANT:
            report.unknown_tenant += 1
            continue
        if stray is Stray.ADOPTED:
            report.orphans_adopted += 1
        else:
            report.foreign_found += 1
        if not dry_run:
            todo.append(ingestor.prepare_key(info.key, etag=info.etag))
            if len(todo) >= 16:
                _run(ingestor, todo, report)
                todo = []
    if todo:
        _run(ingestor, todo, report)

    for info in storage.list(object_keys.THUMBNAILS):
        progress(info.key)
        name = info.key[len(object_keys.THUMBNAILS) :].partition("/")[2]
        try:
            image_id = UUID(name.removesuffix(".webp"))
        except ValueError:
            continue
        if image_id not in kept and not _has_record(db, image_id=image_id):
            report.thumbnails_deleted += 1
            if not dry_run:
                _delete(storage, [info.key], report)


def _has_record(db: Database, *, storage_key: str | None = None, image_id: UUID | None = None) -> bool:
    with db.connection() as conn:
        return repository.exists(conn, storage_key=storage_key, image_id=image_id)


def _run(ingestor: Ingestor, prepared: list[Prepared], report: ReconcileReport) -> None:
    for item in ingestor.embed(prepared):
        try:
            report.count(ingestor.save(item))
        except Exception as e:  # left as it was; the next run tries again
            report.errors.append(f"{item.key}: {e}")


def _delete(storage: ObjectStorage, object_keys: Iterable[str], report: ReconcileReport) -> None:
    for key in object_keys:
        try:
            storage.delete(key)
        except Exception as e:
            report.errors.append(f"{key}: {e}")
