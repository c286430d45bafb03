"""`imagesearch enrich --missing`: read the EXIF of ready images ingested before it was read."""

from __future__ import annotations

import argparse
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "enrich",
        help="back-fill EXIF (date taken, camera, lens, location) of images ingested before it was read",
        description="Reads the original of every ready image whose EXIF was never read and stores what it "
        "says (the location only with IMAGESEARCH_STORE_LOCATION=true). In this process; running it again "
        "does only what is left.",
    )
    parser.add_argument(
        "--missing", action="store_true", required=True, help="every ready image whose EXIF was never read"
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.enrich import enrich_missing, missing_count

    with target_runtime(args) as runtime:
        db = runtime.database
        with tqdm(total=missing_count(db), unit="image", desc="enrich exif") as bar:
            report = enrich_missing(
                db, runtime.storage, store_location=runtime.settings.store_location, progress=bar.update
            )
        print(f"read the EXIF of {report.read} images; {missing_count(db)} left")
        for skipped in report.skipped:
            print(f"  skipped: {skipped}")
    return 0
