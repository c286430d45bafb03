"""Back-fill messages on the ingestion queue, and the embed function's side of them.

`imagesearch reindex --model URI --queue-url URL` sends the ids of the images that lack a model's vectors,
a batch per message, beside the object-created events; the embed function embeds them at its configured
concurrency. One message body (JSON):

    {"imagesearch": "reindex", "version": 1, "model_id": "ViT-B-32-laion2b_s34b_b79k-1a2b3c4d",
     "image_ids": ["0b6f...", "..."]}

At-least-once delivery is harmless: only images that are `ready` and still lack the model's vector are
embedded (of any tenant), and a vector is inserted only where none exists. A transient fault (storage or
database down, the bundle not downloadable) raises, so only that message is delivered again; a model that
is gone or retired, and a malformed body, are acknowledged and logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagesearch.db import Database, embeddings
from imagesearch.db import model_records as records
from imagesearch.errors import ImageRejected, ModelUnavailable, ObjectNotFound, StorageUnavailable
from imagesearch.imaging import open_image
from imagesearch.logs import logger
from imagesearch.model.embedder import EmbeddingModel
from imagesearch.model.registry import ModelRegistry
from imagesearch.storage import ObjectStorage

M = TypeVar("M", bound=BaseModel)
MESSAGE_KEY = "imagesearch"  # a body with this key is one of ours, whatever else it holds
MAX_IMAGES_PER_MESSAGE = 100
# Images decoded at once: a decoded image at the 64 Mpx limit takes about 260 MB (docs/deploy.md).
EMBED_CHUNK = 4


ImageIds = Annotated[list[UUID], Field(min_length=1, max_length=MAX_IMAGES_PER_MESSAGE)]


class QueueMessage(BaseModel):
    """One of the project's own messages on a queue (`imagesearch` names its kind)."""

    model_config = ConfigDict(frozen=True)

    def body(self) -> str:
        """The SQS message body."""
        return self.model_dump_json()


class ReindexMessage(QueueMessage):
    """Embed these images with `model_id` (version 1)."""

    imagesearch: Literal["reindex"] = "reindex"
    version: Literal[1] = 1
    model_id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
    image_ids: ImageIds


class MalformedMessage(ValueError):
    """A body marked as ours that is not a message this version understands: dropped, never retried."""


def is_ours(body: Any) -> bool:
    """Whether a decoded message body is one of the project's own messages (not an S3 event)."""
    return isinstance(body, Mapping) and MESSAGE_KEY in body


def parse_message(body: Mapping[str, Any]) -> ReindexMessage:
    """The message in `body`; MalformedMessage for an unknown kind or version, or bad fields."""
    return validate_message(ReindexMessage, body)


def validate_message(kind: type[M], body: Mapping[str, Any]) -> M:
    """`body` as a message of `kind`; MalformedMessage (naming the first problems) when it is not one."""
    try:
        return kind.model_validate(body)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:5])
        raise MalformedMessage(problems) from None


@dataclass
class BackfillReport:
    embedded: int = 0
    skipped: int = 0  # listed but not embedded: not ready, deleted, already embedded, unreadable


class Backfiller:
    """Embeds the images a ReindexMessage lists with its model, opened through the registry."""

    def __init__(
        self, db: Database, storage: ObjectStorage, models: ModelRegistry, *, max_image_pixels: int
    ) -> None:
        self.db = db
        self.storage = storage
        self.models = models
        self.max_image_pixels = max_image_pixels

    def run(self, message: ReindexMessage) -> BackfillReport:
        """Embed the listed images that still need it; raises the first transient fault after storing what
        it could, so a redelivery has only the rest to do."""
        report = BackfillReport()
        context = {"model_id": message.model_id, "images": len(message.image_ids)}
        with self.db.connection() as conn:
            record = records.get_model(conn, message.model_id)
            todo = embeddings.missing_among(conn, message.model_id, message.image_ids) if record else []
        if record is None or record.state == "retired":
            logger.warning(
                "back-fill message for a model that is gone or retired: dropped",
                extra={**context, "state": record.state if record else None},
            )
            report.skipped = len(message.image_ids)
            return report
        report.skipped = len(message.image_ids) - len(todo)
        if todo:
            model = self._model(record)
            fault = None
            for start in range(0, len(todo), EMBED_CHUNK):
                fault = self._embed_chunk(model, todo[start : start + EMBED_CHUNK], report) or fault
            if fault is not None:
                logger.warning(
                    "back-fill message incomplete: retried", extra={**context, "error": str(fault)}
                )
                raise fault
        logger.info("back-fill message done", extra={**context, "embedded": report.embedded})
        return report

    def _model(self, record: records.ModelRecord) -> EmbeddingModel:
        model = self.models.embedder(record)  # ModelUnavailable: the message comes back (then the DLQ)
        if model.model_id != record.id:
            raise ModelUnavailable(f"the bundle at {record.bundle_uri} is {model.model_id}, not {record.id}")
        return model

    def _embed_chunk(
        self, model: EmbeddingModel, chunk: Sequence[tuple[UUID, str]], report: BackfillReport
    ) -> StorageUnavailable | None:
        """Read, embed and store a few images; the storage fault met on the way, if any."""
        fault: StorageUnavailable | None = None
        targets: list[tuple[UUID, Image.Image]] = []
        for image_id, key in chunk:
            try:
                targets.append(
                    (image_id, open_image(self.storage.get(key), max_pixels=self.max_image_pixels))
                )
            except (ObjectNotFound, ImageRejected) as e:  # deleted meanwhile, or no longer decodable
                logger.warning(
                    "back-fill skipped an image", extra={"image_id": str(image_id), "error": str(e)}
                )
                report.skipped += 1
            except StorageUnavailable as e:
                fault = fault or e
        vectors = self._embed(model, targets, report)
        if not vectors:
            return fault
        with self.db.connection() as conn:
            for image_id, vector in vectors:
                if embeddings.insert_missing(
                    conn, image_id=image_id, model_id=model.model_id, embedding=vector
                ):
                    report.embedded += 1
                else:  # embedded by the upload path meanwhile, deleted, or no longer ready
                    report.skipped += 1
        return fault

    def _embed(
        self, model: EmbeddingModel, targets: list[tuple[UUID, Image.Image]], report: BackfillReport
    ) -> list[tuple[UUID, np.ndarray]]:
        if not targets:
            return []
        try:
            vectors = model.embed_images([image for _, image in targets])
        except ImageRejected as e:  # the model refused one of them: find it alone
            if len(targets) > 1:
                return [pair for target in targets for pair in self._embed(model, [target], report)]
            logger.warning(
                "back-fill: the model refused an image",
                extra={"image_id": str(targets[0][0]), "reason": e.reason},
            )
            report.skipped += 1
            return []
        return [(image_id, vector) for (image_id, _), vector in zip(targets, vectors, strict=True)]
