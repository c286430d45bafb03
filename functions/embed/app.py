"""Embed function: object-created events (S3 -> SQS, S3 direct, EventBridge) -> embeddings, and back-fill
messages (`imagesearch reindex --queue-url`) -> another model's vectors of stored images.

`app` is the same function as an HTTP service (`imagesearch serve embed`, and the local stack's one port):
`POST /events` takes CloudEvents and S3-compatible webhooks pushed by Knative Eventing, Eventarc, Event
Grid or MinIO (imagesearch.http.events). It is built on first use, so the Lambda function, which only
runs `handler`, never imports FastAPI or the CloudEvents SDK (its layers carry neither).

SQS batches report partial failures through Powertools' batch utility: a permanently bad image is recorded
as `failed` and acknowledged; a transient fault fails only its message, which SQS redelivers and, after
maxReceiveCount, moves to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from imagesearch.ingest.batch import MessageBatch
from imagesearch.ingest.events import parse_body
from imagesearch.logs import logger
from imagesearch.observability import metrics, tracer
from imagesearch.runtime import get_runtime

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _sqs_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Every message of the batch is prepared and embedded together; each is then saved on its own (a
    # back-fill message from `imagesearch reindex --queue-url` is embedded then, with its model).
    runtime = get_runtime()
    messages = ((r["messageId"], r["body"]) for r in event["Records"])
    batch = MessageBatch(runtime.ingestor, messages, models=runtime.models, steps=runtime.enrich_steps())

    def record_handler(record: SQSRecord) -> None:
        batch.save(record.message_id)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(event, context)
    # A direct S3 notification or an EventBridge event: a transient fault raises, so Lambda retries it.
    outcomes = get_runtime().ingestor.ingest(parse_body(event))
    return {"outcomes": [str(outcome) for outcome in outcomes]}


def __getattr__(name: str) -> Any:
    """`app`, the HTTP service, made when first asked for (PEP 562): a module attribute from then on."""
    if name != "app":
        raise AttributeError(name)
    from imagesearch.http.events import events_app

    globals()["app"] = events_app()
    return globals()["app"]
