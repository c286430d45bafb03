"""Embed function: object-created events (S3 -> SQS, S3 direct, EventBridge) -> embeddings.

SQS batches report partial failures through Powertools' batch utility: a permanently bad image is recorded
as `failed` and acknowledged; a transient fault fails only its message, which SQS redelivers and, after
maxReceiveCount, moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from imagesearch.config import Settings, get_settings
from imagesearch.ingest.events import UnrecognisedEvent, parse_body
from imagesearch.ingest.factory import ingestor_from_settings
from imagesearch.ingest.processor import Ingestor, Prepared
from imagesearch.logs import logger

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_ingestor: tuple[Settings, Ingestor] | None = None
_ingestor_lock = threading.Lock()


def ingestor() -> Ingestor:
    """Built on first use (not at import); rebuilt if the process-wide settings are replaced."""
    global _ingestor
    settings = get_settings()
    with _ingestor_lock:
        if _ingestor is None or _ingestor[0] is not settings:
            _ingestor = (settings, ingestor_from_settings())
        return _ingestor[1]


def _sqs_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    work = ingestor()
    by_message: dict[str, list[Prepared]] = {}
    for record in event["Records"]:
        try:
            events = parse_body(json.loads(record["body"]))
        except (ValueError, KeyError, TypeError, UnrecognisedEvent):
            # A message that can never be understood is acknowledged (and logged), not retried forever.
            logger.error("unrecognised message dropped", extra={"message_id": record.get("messageId")})
            events = []
        by_message[record["messageId"]] = [work.prepare(e) for e in events]
    work.embed([item for items in by_message.values() for item in items])

    def record_handler(record: SQSRecord) -> None:
        for item in by_message.get(record.message_id, []):
            work.commit(item)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(event, context)
    # A direct S3 notification or an EventBridge event: a transient fault raises, so Lambda retries it.
    outcomes = ingestor().process(parse_body(event))
    return {"outcomes": [str(outcome) for outcome in outcomes]}
