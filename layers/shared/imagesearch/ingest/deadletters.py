"""Dead-lettered ingestion events: listing and replaying them, locally and on SQS. Nothing is lost:
a message leaves the dead-letter store only once it is safely back in the live queue."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesearch.ingest.events import UnrecognisedEvent, parse_body
from imagesearch.local.datadir import DataDir


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    body: dict[str, Any]

    @property
    def summary(self) -> str:
        try:
            return ", ".join(event.key for event in parse_body(self.body)) or "(no object)"
        except (UnrecognisedEvent, KeyError, TypeError):
            return "(unrecognised body)"


def list_local(root: Path) -> list[DeadLetter]:
    directory = DataDir(root.resolve()).dead_letters
    letters = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        content = json.loads(path.read_text("utf-8"))
        letters.append(DeadLetter(path.stem, int(content.get("receive_count", 0)), content["body"]))
    return letters


def replay_local(root: Path) -> int:
    """Move dead letters to the replay directory the stack's worker polls (atomic renames)."""
    layout = DataDir(root.resolve())
    if not layout.dead_letters.is_dir():
        return 0
    layout.replay.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(layout.dead_letters.glob("*.json")):
        os.replace(path, layout.replay / path.name)
        count += 1
    return count


def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def list_sqs(queue_url: str, *, limit: int = 100) -> list[DeadLetter]:
    """Peek at up to `limit` messages: received hidden, then made visible again at once."""
    sqs = _sqs()
    letters: dict[str, DeadLetter] = {}
    handles: list[str] = []
    try:
        while len(letters) < limit:
            response = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for m in messages:
                handles.append(m["ReceiptHandle"])
                count = int(m["Attributes"].get("ApproximateReceiveCount", 0))
                letters[m["MessageId"]] = DeadLetter(m["MessageId"], count, json.loads(m["Body"]))
    finally:
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
    return list(letters.values())


def replay_sqs(queue_url: str, target_queue_url: str) -> int:
    """Send each dead letter to the live queue, then delete it from the dead-letter queue."""
    sqs = _sqs()
    count = 0
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
        messages = response.get("Messages", [])
        if not messages:
            return count
        for m in messages:
            sqs.send_message(QueueUrl=target_queue_url, MessageBody=m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            count += 1
