"""`imagesearch reindex`: back-fill another model's vectors beside the active one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "reindex", help="embed every image with another model bundle (resumable), beside the active model"
    )
    parser.add_argument("--model-dir", type=Path, required=True, help="the bundle to back-fill")
    parser.add_argument("--batch-size", type=int, default=32)
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from imagesearch.ingest.reindex import missing_count, reindex

    with target_runtime(args) as runtime:
        bundle = str(args.model_dir.resolve())
        model = runtime.load_bundle(bundle)
        db = runtime.database
        total = missing_count(db, model.model_id)
        with tqdm(total=total, unit="image", desc=f"reindex {model.model_id}") as bar:
            report = reindex(
                runtime.models,
                runtime.storage,
                model,
                bundle_uri=bundle,
                max_image_pixels=runtime.settings.max_image_pixels,
                batch_size=args.batch_size,
                progress=bar.update,
            )
        left = missing_count(db, model.model_id)
    print(f"embedded {report.embedded} images with {model.model_id}; {left} still lack a vector")
    for skipped in report.skipped:
        print(f"  skipped: {skipped}")
    if not left:
        print(f"switch search to it with: imagesearch model activate {model.model_id}")
    return 0
