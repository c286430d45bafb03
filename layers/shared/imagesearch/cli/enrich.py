"""`imagesearch enrich --missing`: what ingestion now derives from images (EXIF, place, duplicates, labels,
text), for ready images ingested before it did."""

from __future__ import annotations

import argparse
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "enrich",
        help="back-fill enrichment (EXIF, place, duplicates, labels, OCR) of images ingested before it",
        description="Runs each enrichment step on every ready image it never ran on: in this process, or, "
        "with --queue-url, by sending their ids to a queue for the function that runs the step (the "
        "ingestion queue for the embed function's steps; the OCR queue for `ocr`). The location is stored "
        "only with IMAGESEARCH_STORE_LOCATION=true. Running it again does only what is left.",
    )
    parser.add_argument(
        "--missing", action="store_true", required=True, help="every ready image a step never ran on"
    )
    parser.add_argument(
        "--step",
        action="append",
        help="only this step (repeatable): exif, place, phash, labels, ocr; default: every step configured",
    )
    parser.add_argument("--queue-url", help="send the ids to this SQS queue instead of enriching here")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="images per queue message, at most 100 (default: the step's own, 50; 5 for ocr, which takes "
        "seconds an image)",
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.backfill import MAX_IMAGES_PER_MESSAGE
    from imagesearch.ingest.enrich import enqueue_missing, enrich_missing, pending_count

    if args.batch_size is not None and not 1 <= args.batch_size <= MAX_IMAGES_PER_MESSAGE:
        raise SystemExit(f"--batch-size must be between 1 and {MAX_IMAGES_PER_MESSAGE}")
    with target_runtime(args) as runtime:
        db = runtime.database
        steps = runtime.enrich_steps(ocr=True)
        known = [step.name for step in steps]
        unknown = sorted(set(args.step or []) - set(known))
        if unknown:
            raise SystemExit(f"no step {', '.join(unknown)}: this deployment runs {', '.join(known)}")
        chosen = [step for step in steps if not args.step or step.name in args.step]
        for step in chosen:
            with tqdm(total=pending_count(db, step), unit="image", desc=f"enrich {step.name}") as bar:
                if args.queue_url:
                    from imagesearch.ingest.sqs_sender import SqsSender

                    sent = enqueue_missing(
                        db,
                        SqsSender(args.queue_url),
                        step,
                        images_per_message=args.batch_size or step.images_per_message,
                        progress=bar.update,
                    )
                    print(f"{step.name}: sent {sent.images} image ids to {args.queue_url}")
                    continue
                report = enrich_missing(
                    db, runtime.storage, step, limits=runtime.enrich_limits, progress=bar.update
                )
            print(f"{step.name}: enriched {report.stored} images; {pending_count(db, step)} left")
            for skipped in report.skipped:
                print(f"  skipped: {skipped}")
    return 0
