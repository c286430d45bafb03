"""`imagesearch dlq`: list and replay dead-lettered ingestion events."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dlq", help="list or replay dead-lettered ingestion events (SQS, or the local stack's directory)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (
        ("list", "show dead-lettered messages"),
        ("replay", "send them to be processed again"),
    ):
        action = actions.add_parser(name, help=help_text)
        where = action.add_mutually_exclusive_group(required=True)
        where.add_argument("--data-dir", type=Path, help="a local stack's data directory")
        where.add_argument("--queue-url", help="the SQS dead-letter queue")
        action.add_argument("--target-queue-url", help="replay into this SQS queue (with --queue-url)")
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagesearch.ingest import dead_letters
    from imagesearch.local import dead_letters as local_dead_letters

    if args.data_dir is not None:
        if args.action == "list":
            messages = local_dead_letters.list_local(args.data_dir)
            for message in messages:
                print(f"{message.message_id}  received {message.receive_count}x  {message.summary}")
            print(f"{len(messages)} dead-lettered messages")
        else:
            count = local_dead_letters.replay_local(args.data_dir)
            print(f"{count} messages put back; the running stack (or the next one started) delivers them")
        return 0
    if args.action == "list":
        messages = dead_letters.list_sqs(args.queue_url)
        for message in messages:
            print(f"{message.message_id}  received {message.receive_count}x  {message.summary}")
        print(f"{len(messages)} dead-lettered messages (peeked, left in the queue)")
        return 0
    if not args.target_queue_url:
        print("imagesearch dlq replay: --target-queue-url is required with --queue-url")
        return 2
    count = dead_letters.replay_sqs(args.queue_url, args.target_queue_url)
    print(f"{count} messages moved from the dead-letter queue back to {args.target_queue_url}")
    return 0
