"""Entry point of the `imagesearch` console script.

Each command group lives in its own module with a `register(subparsers)` function; heavy imports happen
inside the command functions so `imagesearch --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from imagesearch.config import SettingsError
from imagesearch.errors import ImageSearchError

# Modules under imagesearch.cli that contribute commands, in the order --help lists them.
COMMAND_MODULES = [
    "dev",
    "serve",
    "migrate",
    "model",
    "ingest",
    "reindex",
    "enrich",
    "reconcile",
    "webhooks",
    "dlq",
    "shadow",
    "api_keys",
    "demo",
    "invoke",
    "openapi",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagesearch", description="Image search API: local stack and tools."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"imagesearch.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (SettingsError, ImageSearchError) as e:
        print(f"imagesearch: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
