"""Which deployment a maintenance command acts on: the configured database, or a local stack's data."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagesearch.config import Settings, get_settings, use_settings
from imagesearch.db.pool import close_databases
from imagesearch.storage.factory import use_storage


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="act on the local stack in DIR (also while it runs) instead of IMAGESEARCH_DATABASE_URL",
    )


@contextmanager
def target_settings(args: argparse.Namespace) -> Iterator[Settings]:
    """Process-wide settings for the command's target, restored afterwards."""
    if args.data_dir is None:
        yield get_settings()
        return
    from imagesearch.local.datadir import open_data_dir

    with open_data_dir(args.data_dir) as settings:
        previous_settings = use_settings(settings)
        previous_storage = use_storage(None)
        try:
            yield settings
        finally:
            close_databases()
            use_settings(previous_settings)
            use_storage(previous_storage)
