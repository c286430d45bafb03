"""`imagesearch demo seed`: fill a running stack with a generated gallery of coloured shapes."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `demo` command group."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="demo data: a generated gallery of coloured shapes for the demo model"
    )
    commands = parser.add_subparsers(dest="demo_command", required=True, metavar="SUBCOMMAND")
    seed = commands.add_parser(
        "seed",
        help="upload a generated gallery (titles, descriptions, tags) to a running API",
        description="Pictures are deterministic for a seed: running it again uploads the same bytes, which "
        "the API recognises (counted as skipped).",
    )
    seed.add_argument("--count", type=int, default=200, help="pictures to upload (default 200)")
    seed.add_argument("--seed", type=int, default=None, help="gallery seed (default 1; training uses 0)")
    seed.add_argument("--url", help="the API (default: $IMAGESEARCH_URL, else the local stack)")
    seed.add_argument("--api-key", help="API key, when the API requires one (default: $IMAGESEARCH_API_KEY)")
    seed.add_argument("--concurrency", type=int, default=4, help="uploads in flight (default 4)")
    seed.set_defaults(func=run_seed)


def run_seed(args: argparse.Namespace) -> int:
    """Run `demo seed` with a progress bar and a summary."""
    from tqdm import tqdm

    from imagesearch.client import Client
    from imagesearch.client.bulk_upload import UploadOutcome
    from imagesearch.demo.gallery import GALLERY_SEED, upload_gallery

    if args.count < 1:
        print("imagesearch: error: --count must be at least 1", file=sys.stderr)
        return 2
    seed = GALLERY_SEED if args.seed is None else args.seed
    with (
        Client(args.url, args.api_key) as client,
        tqdm(total=args.count, unit="image", desc="demo seed") as bar,
    ):
        result = upload_gallery(
            client,
            count=args.count,
            seed=seed,
            concurrency=args.concurrency,
            progress=lambda _name, _outcome: bar.update(1),
        )
    added, skipped = result.count(UploadOutcome.ADDED), result.count(UploadOutcome.SKIPPED)
    failures = result.failures()
    print(f"added {added}, skipped {skipped} (already there), failed {len(failures)}")
    for name, detail in failures[:20]:
        print(f"  failed: {name}: {detail}")
    if added:
        print("the pictures are embedded in the background; try a search such as 'a red circle'")
    return 1 if failures else 0
