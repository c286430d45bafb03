"""`imagesearch reconcile`: re-drive stuck pending images, remove objects of deleted images, adopt others."""

from __future__ import annotations

import argparse
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reconcile",
        help="process images stuck in pending, remove objects of deleted images, adopt other objects",
    )
    parser.add_argument(
        "--pending-timeout", type=float, default=900, help="seconds a record may stay pending (default 900)"
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be done, change nothing")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.reconcile import reconcile

    with target_runtime(args) as runtime:
        with tqdm(unit="item", desc="reconcile") as bar:
            report = reconcile(
                runtime.database,
                runtime.storage,
                runtime.ingestor,
                pending_timeout_seconds=args.pending_timeout,
                dry_run=args.dry_run,
                progress=lambda _key: bar.update(1),
            )
    verb = "would be " if args.dry_run else ""
    print(f"pending images {verb}processed: {dict(report.redriven) or 0}")
    print(f"pending images whose bytes never came, {verb}failed: {report.missing_failed}")
    print(f"objects of deleted images {verb}removed: {report.orphans_deleted}")
    print(f"originals whose record was lost {verb}adopted: {report.orphans_adopted}")
    print(f"objects put by other tools found: {report.foreign_found}")
    print(f"originals of unknown tenants left alone: {report.unknown_tenant}")
    print(f"orphan thumbnails {verb}removed: {report.thumbnails_deleted}")
    for error in report.errors:
        print(f"  error: {error}")
    return 1 if report.errors else 0
