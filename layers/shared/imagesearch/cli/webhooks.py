"""`imagesearch webhooks dispatch`: send the webhook outbox's due deliveries, where no Lambda schedule
does (a Kubernetes CronJob, a Cloud Run job on Cloud Scheduler; docs/deploy-anywhere.md)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from imagesearch.cli.target import add_target_arguments, target_runtime


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "webhooks", help="outbound webhooks: send the deliveries that are due"
    )
    commands = parser.add_subparsers(dest="webhooks_command", required=True, metavar="SUBCOMMAND")
    dispatch = commands.add_parser(
        "dispatch",
        help="send due webhook deliveries until none is left (run it every minute: retries come due)",
        description="Several may run at once: each claims its own deliveries. Exits 0 when it ran, "
        "whatever the receivers answered (their answers are recorded on each delivery).",
    )
    dispatch.add_argument(
        "--seconds", type=float, default=50.0, help="start no new batch after this long (default 50)"
    )
    add_target_arguments(dispatch)
    dispatch.set_defaults(func=run_dispatch)


def run_dispatch(args: argparse.Namespace) -> int:
    with target_runtime(args) as runtime:
        attempted = runtime.dispatcher.run(deadline=time.monotonic() + max(args.seconds, 0.0))
    print(f"webhook deliveries attempted: {attempted}")
    return 0
