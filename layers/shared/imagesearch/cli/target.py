"""Which deployment a maintenance command acts on: the configured one, or a local stack's data."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagesearch.runtime import Runtime, get_runtime, using


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="act on the local stack in DIR (also while it runs) instead of IMAGESEARCH_DATABASE_URL",
    )


@contextmanager
def target_runtime(args: argparse.Namespace) -> Iterator[Runtime]:
    """The runtime of the command's target: the environment's, or one over the local stack's data."""
    if args.data_dir is None:
        yield get_runtime()
        return
    from imagesearch.local.datadir import open_data_dir

    with open_data_dir(args.data_dir) as settings, using(settings) as runtime:
        yield runtime
