"""`imagesearch ingest PATH...`: bulk upload to a running API."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ingest", help="upload image files or folders to a running API (resumable)"
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders")
    parser.add_argument(
        "--tags", action="append", default=[], help="tags for every file (repeat or comma-separate)"
    )
    parser.add_argument("--url", help="the API (default: $IMAGESEARCH_URL, else the local stack)")
    parser.add_argument(
        "--api-key", help="API key, when the API requires one (default: $IMAGESEARCH_API_KEY)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="uploads in flight (default 4)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagesearch.client import Client
    from imagesearch.client.bulk_upload import BulkUploader, UploadOutcome, collect_files

    files = collect_files(args.paths, recursive=args.recursive)
    if not files:
        print("no image files found")
        return 1
    with (
        Client(args.url, args.api_key) as client,
        tqdm(total=len(files), unit="file", desc="ingest") as bar,
    ):
        uploader = BulkUploader(client, tags=args.tags, concurrency=max(1, args.concurrency))
        result = uploader.run(files, progress=lambda _path, _outcome: bar.update(1))
    added, skipped = result.count(UploadOutcome.ADDED), result.count(UploadOutcome.SKIPPED)
    rejected, errors = result.count(UploadOutcome.REJECTED), result.count(UploadOutcome.ERROR)
    print(f"added {added}, skipped {skipped} (already there), rejected {rejected}, errors {errors}")
    for outcome in (UploadOutcome.REJECTED, UploadOutcome.ERROR):
        for path, detail in result.files[outcome]:
            print(f"  {outcome}: {path}: {detail}")
    return 1 if result.count(UploadOutcome.ERROR) else 0
