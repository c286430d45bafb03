"""Dead-lettered ingestion events, and listing and replaying them on SQS. Nothing is lost: a message
leaves the dead-letter queue only once it is safely back in the live queue (the local stack's directory of
dead letters: imagesearch.local.dead_letters)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imagesearch.ingest import backfill
from imagesearch.ingest.events import UnrecognisedEvent, parse_body


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    body: dict[str, Any]

    @property
    def summary(self) -> str:
        if backfill.is_ours(self.body):  # `imagesearch reindex --queue-url`'s back-fill messages
            try:
                message = backfill.parse_message(self.body)
            except backfill.MalformedMessage:
                return "(malformed back-fill message)"
            return f"back-fill of {message.model_id}: {len(message.image_ids)} images"
        try:
            return ", ".join(event.key for event in parse_body(self.body)) or "(no object)"
        except (UnrecognisedEvent, KeyError, TypeError):
            return "(unrecognised body)"


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
