"""Enrichment back-fill: what ingestion now derives from an image, for the ready images it never did.

Each kind of enrichment is a step (EXIF here; the place, the perceptual hash and its duplicate group,
labels from the model and OCR in their own modules) with an `unread` predicate that is true while the step
has not run on an image. `imagesearch enrich --missing` runs every step in this process; with `--queue-url`
it sends the ids instead, an `EnrichMessage` per batch, for the function that owns the step to run
(imagesearch.ingest.batch). Either way a second run does only what is left, and a step stores its result
only where its predicate still holds (ingestion may have got there first, and its values stand).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

from PIL import Image
from psycopg import sql
from pydantic import Field

from imagesearch.db import Database
from imagesearch.errors import ImageRejected, ObjectNotFound
from imagesearch.images import repository
from imagesearch.images.thumbnails import THUMBNAIL_SIZE
from imagesearch.imaging import decode_upload
from imagesearch.ingest.backfill import ImageIds, QueueMessage, validate_message
from imagesearch.ingest.processor import read_photo_exif
from imagesearch.ingest.reindex import ZERO_UUID, EnqueueReport, MessageQueue, send_in_messages
from imagesearch.logs import logger
from imagesearch.storage import ObjectStorage

PAGE = 200


class EnrichSource:
    """One ready image to enrich: its original read, and decoded (under `limits`), at most once and only
    when a step asks."""

    def __init__(self, storage: ObjectStorage, image: Pending, limits: Limits) -> None:
        self.image_id, self.tenant_id, self.storage_key = image.image_id, image.tenant_id, image.storage_key
        self._storage = storage
        self._limits = limits
        self._data: bytes | None = None
        self._image: Image.Image | None = None

    def data(self) -> bytes:
        """The original's bytes (ObjectNotFound when it is gone)."""
        if self._data is None:
            self._data = self._storage.get(self.storage_key)
        return self._data

    def image(self) -> Image.Image:
        """The original decoded once, oriented, RGB, its shorter side reduced to no less than a thumbnail's
        (ImageRejected when it no longer decodes)."""
        if self._image is None:
            limits = self._limits
            decoded = decode_upload(
                self.data(),
                max_bytes=limits.max_bytes,
                max_pixels=limits.max_pixels,
                reduce_to=THUMBNAIL_SIZE,
            )
            self._image = decoded.image
        return self._image


class EnrichStep(Protocol):
    """One kind of enrichment, run on a ready image where `unread` (a fixed SQL predicate on `images`,
    parameters from `params()`) holds; `enrich` stores its result where the predicate still holds and says
    whether it did."""

    name: str
    unread: str
    # Images per enrich message (`imagesearch enrich --queue-url`): what the function that runs the step
    # gets through within its timeout, four messages an invocation.
    images_per_message: int

    def params(self) -> dict[str, Any]: ...

    def enrich(self, db: Database, source: EnrichSource) -> bool: ...


class ExifStep:
    """EXIF: when, with what and where a photo was taken (imagesearch.exif)."""

    name = "exif"
    unread = "exif_read_at IS NULL"
    images_per_message = 50  # a download and a header parse each

    def __init__(self, *, store_location: bool) -> None:
        self.store_location = store_location

    def params(self) -> dict[str, Any]:
        return {}

    def enrich(self, db: Database, source: EnrichSource) -> bool:
        exif = read_photo_exif(
            source.data(), store_location=self.store_location, image_id=str(source.image_id)
        )
        with db.connection() as conn:
            return repository.set_exif(conn, source.image_id, exif, only_unread=True)


# --- what is left ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    image_id: UUID
    tenant_id: UUID
    storage_key: str


def _where(step: EnrichStep) -> sql.Composable:
    # `unread` is the step's own fixed text, never user input.
    return sql.SQL("status = 'ready' AND ({})").format(sql.SQL(step.unread))


def pending_count(db: Database, step: EnrichStep) -> int:
    """Ready images the step has not run on."""
    query = sql.SQL("SELECT count(*) FROM images WHERE {}").format(_where(step))
    with db.connection() as conn:
        row = conn.execute(query, step.params()).fetchone()
    return int(row[0]) if row else 0


def pending(
    db: Database,
    step: EnrichStep,
    *,
    after: UUID = ZERO_UUID,
    limit: int,
    among: Sequence[UUID] | None = None,
) -> list[Pending]:
    """The next `limit` images (by id, after `after`) the step has not run on; only those of `among` if
    given."""
    params = {**step.params(), "after": after, "limit": limit, "among": list(among or [])}
    among_sql = sql.SQL(" AND id = ANY(%(among)s::uuid[])" if among is not None else "")
    query = sql.SQL(
        "SELECT id, tenant_id, storage_key FROM images WHERE {} AND id > %(after)s{} "
        "ORDER BY id LIMIT %(limit)s"
    ).format(_where(step), among_sql)
    with db.connection() as conn:
        return [Pending(*row) for row in conn.execute(query, params).fetchall()]


# --- running steps -----------------------------------------------------------------------------------------
@dataclass
class StepReport:
    stored: int = 0
    skipped: list[str] = field(default_factory=list)  # "<id>: why"


@dataclass(frozen=True)
class Limits:
    """The ingestion limits an original is decoded under."""

    max_bytes: int
    max_pixels: int


def enrich_images(
    db: Database,
    storage: ObjectStorage,
    step: EnrichStep,
    images: Sequence[Pending],
    *,
    limits: Limits,
    report: StepReport,
    progress: Callable[[int], object] = lambda n: None,
) -> None:
    """Run `step` on each image; an original gone or no longer decodable is skipped (and said); a transient
    fault (storage or database down) raises, leaving what is stored."""
    for image in images:
        source = EnrichSource(storage, image, limits)
        try:
            if step.enrich(db, source):
                report.stored += 1
                with db.connection() as conn:  # a failure noted at ingestion is history now
                    repository.clear_enrich_failure(conn, image.image_id, step.name)
        except ObjectNotFound:
            report.skipped.append(f"{image.image_id}: the original is gone")
        except ImageRejected as e:
            report.skipped.append(f"{image.image_id}: {e.reason}: {e.detail}")
        progress(1)


def enrich_missing(
    db: Database,
    storage: ObjectStorage,
    step: EnrichStep,
    *,
    limits: Limits,
    progress: Callable[[int], object] = lambda n: None,
) -> StepReport:
    """Run `step` on every ready image it has not run on. Run steps in the order `Runtime.enrich_steps`
    gives: a later step may use an earlier one's result (the place uses the location EXIF gives)."""
    report = StepReport()
    after = ZERO_UUID
    while page := pending(db, step, after=after, limit=PAGE):
        after = page[-1].image_id  # an image skipped (its original gone) stays unread: move past it
        enrich_images(db, storage, step, page, limits=limits, report=report, progress=progress)
    logger.info("enrichment step done", extra={"step": step.name, "stored": report.stored})
    return report


# --- through a queue ---------------------------------------------------------------------------------------
class EnrichMessage(QueueMessage):
    """Run `step` on these images (version 1), sent by `imagesearch enrich --missing --queue-url`."""

    imagesearch: Literal["enrich"] = "enrich"
    version: Literal[1] = 1
    step: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]
    image_ids: ImageIds


def parse_enrich_message(body: Mapping[str, Any]) -> EnrichMessage:
    """The message in `body`; MalformedMessage for an unknown version or bad fields."""
    return validate_message(EnrichMessage, body)


def run_message(
    db: Database,
    storage: ObjectStorage,
    steps: Sequence[EnrichStep],
    message: EnrichMessage,
    *,
    limits: Limits,
) -> StepReport:
    """The images of `message` its step has not run on, enriched; a step this function does not run is
    logged and dropped (the message went to the wrong queue)."""
    report = StepReport()
    step = next((s for s in steps if s.name == message.step), None)
    if step is None:
        logger.error(
            "enrich message for a step this function does not run: dropped",
            extra={"step": message.step, "steps": [s.name for s in steps]},
        )
        return report
    todo = pending(db, step, limit=len(message.image_ids), among=message.image_ids)
    enrich_images(db, storage, step, todo, limits=limits, report=report)
    for skipped in report.skipped:
        logger.warning("enrichment skipped an image", extra={"step": step.name, "why": skipped})
    logger.info(
        "enrich message done",
        extra={"step": step.name, "images": len(message.image_ids), "stored": report.stored},
    )
    return report


def enqueue_missing(
    db: Database,
    queue: MessageQueue,
    step: EnrichStep,
    *,
    images_per_message: int,
    progress: Callable[[int], object] = lambda n: None,
) -> EnqueueReport:
    """Send the ids of every ready image `step` has not run on, a batch per message."""

    def unread(after: UUID, limit: int) -> list[UUID]:
        return [p.image_id for p in pending(db, step, after=after, limit=limit)]

    def body(ids: list[UUID]) -> str:
        return EnrichMessage(step=step.name, image_ids=ids).body()

    return send_in_messages(queue, unread, body, images_per_message=images_per_message, progress=progress)
