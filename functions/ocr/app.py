"""OCR function: object-created events (bucket -> EventBridge -> the OCR queue) and enrich messages for the
`ocr` step -> the text printed in the pictures, into the keyword index (imagesearch.ingest.ocr).

Deployed only with the template's Ocr=true, as a container image (functions/ocr/Dockerfile: RapidOCR and
its ONNX models, OpenCV), which no zip function's 250 MB would hold; the embed function never carries them
(docs/deploy.md, "OCR"). An event that arrives before its image is embedded fails its message alone
(partial batch response), and the queue delivers it again later; the local stack calls this handler with
the embed function's own events, after the embed handler (imagesearch.local.ocr).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from imagesearch.ingest.ocr import OcrReader
from imagesearch.logs import logger
from imagesearch.observability import metrics, tracer
from imagesearch.runtime import get_runtime

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _reader() -> OcrReader | None:
    runtime = get_runtime()
    step = runtime.ocr_step
    return None if step is None else OcrReader(runtime.database, runtime.storage, step)


def _sqs_batch(event: dict[str, Any], context: Any, reader: OcrReader) -> dict[str, Any]:
    limits = get_runtime().enrich_limits

    def record_handler(record: SQSRecord) -> None:
        reader.read_message(record.body, limits=limits)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)


@tracer.capture_lambda_handler
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reader = _reader()
    if reader is None:  # the setting is off (or the engine missing): every message is acknowledged
        logger.info("OCR is off: event ignored")
        return {"batchItemFailures": []}
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return _sqs_batch(event, context, reader)
    # A direct S3 notification or EventBridge event: a transient fault raises, so Lambda retries it.
    outcomes = reader.read_message(json.dumps(event), limits=get_runtime().enrich_limits)
    return {"outcomes": [str(outcome) for outcome in outcomes]}
