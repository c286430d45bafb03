"""`imagesearch reindex`: back-fill another model's vectors beside the active one, here or in the cloud."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from imagesearch.cli.target import add_target_arguments, target_runtime
from imagesearch.errors import ImageSearchError

if TYPE_CHECKING:
    from imagesearch.model.embedder import EmbeddingModel
    from imagesearch.runtime import Runtime

IMAGES_PER_MODEL_RUN = 32  # in this process
# Per queue message: the embed function takes 4 messages per invocation (EmbedBatchSize) within 60 s,
# and an image costs it about 0.3 s (download, decode, embed), 1.5 s at the 64 Mpx limit.
IMAGES_PER_MESSAGE = 10


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reindex",
        help="embed every image with another model bundle (resumable), beside the active model",
        description="Registers the model in back-fill (new uploads get its vectors from then on), then "
        "embeds every ready image that lacks them: in this process, or, with --queue-url, by sending their "
        "ids to the ingestion queue for the embed function. Running it again does only what is left.",
    )
    parser.add_argument(
        "--model",
        "--model-dir",
        dest="model",
        required=True,
        metavar="URI",
        help="the bundle: s3://bucket/prefix/, file:///dir/ or a directory (--model-dir: the old name)",
    )
    parser.add_argument(
        "--queue-url",
        help="the stack's IngestQueueUrl: the embed function back-fills (needs sqs:SendMessage on it)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"images per model run here (default {IMAGES_PER_MODEL_RUN}), or per message with "
        f"--queue-url (default {IMAGES_PER_MESSAGE}, at most 100)",
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def bundle_location(value: str, *, queued: bool) -> str:
    """The location to register: an s3:// or file:// URI as given, a directory made absolute."""
    if urlparse(value).scheme in ("s3", "file"):
        return value
    if queued:
        raise ImageSearchError(
            f"{value} is a local directory, which the embed function cannot open: upload it "
            f"(aws s3 sync {value} s3://BUCKET/models/MODEL_ID/) and pass that s3:// URI"
        )
    return str(Path(value).resolve())


def run(args: argparse.Namespace) -> int:
    from imagesearch.ingest.backfill import MAX_IMAGES_PER_MESSAGE

    queued = args.queue_url is not None
    batch_size = args.batch_size or (IMAGES_PER_MESSAGE if queued else IMAGES_PER_MODEL_RUN)
    if batch_size < 1:
        raise ImageSearchError("--batch-size must be at least 1")
    if queued and batch_size > MAX_IMAGES_PER_MESSAGE:
        raise ImageSearchError(f"--batch-size is at most {MAX_IMAGES_PER_MESSAGE} images per message")
    location = bundle_location(args.model, queued=queued)
    with target_runtime(args) as runtime:
        model = runtime.load_bundle(location)  # the manifest only: no tower is loaded to register it
        if queued:
            return _enqueue(runtime, model, location, args.queue_url, batch_size)
        return _reindex_here(runtime, model, location, batch_size)


def _enqueue(runtime: Runtime, model: EmbeddingModel, location: str, queue_url: str, batch_size: int) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.reindex import enqueue_backfill, missing_count, register_for_backfill
    from imagesearch.ingest.sqs_sender import SqsSender
    from imagesearch.logs import logger

    db = runtime.database
    record = register_for_backfill(runtime.models, model, bundle_uri=location)
    total = missing_count(db, model.model_id)
    with tqdm(total=total, unit="image", desc=f"enqueue {model.model_id}") as bar:
        report = enqueue_backfill(
            db, SqsSender(queue_url), model.model_id, images_per_message=batch_size, progress=bar.update
        )
    logger.info(
        "back-fill enqueued",
        extra={
            "model_id": model.model_id,
            "bundle_uri": location,
            "state": record.state,
            "images": report.images,
            "messages": report.messages,
            "queue_url": queue_url,
        },
    )
    if report.images:
        print(
            f"sent {report.images} images in {report.messages} messages: the embed function back-fills "
            f"{model.model_id} (state {record.state}); new uploads get its vectors too"
        )
    else:
        print(f"nothing to send: every ready image has a vector of {model.model_id} (state {record.state})")
    print(f"follow it with: imagesearch model status {model.model_id}   (exits 0 once complete)")
    return 0


def _reindex_here(runtime: Runtime, model: EmbeddingModel, location: str, batch_size: int) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.reindex import missing_count, reindex

    db = runtime.database
    total = missing_count(db, model.model_id)
    with tqdm(total=total, unit="image", desc=f"reindex {model.model_id}") as bar:
        report = reindex(
            runtime.models,
            runtime.storage,
            model,
            bundle_uri=location,
            max_image_pixels=runtime.settings.max_image_pixels,
            batch_size=batch_size,
            progress=bar.update,
        )
    left = missing_count(db, model.model_id)
    print(f"embedded {report.embedded} images with {model.model_id}; {left} still lack a vector")
    for skipped in report.skipped:
        print(f"  skipped: {skipped}")
    if not left:
        print(f"switch search to it with: imagesearch model activate {model.model_id}")
    return 0
