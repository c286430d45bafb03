"""Event factories built from the sample events in events/ (the shapes `sam local generate-event` makes)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any
from urllib.parse import quote_plus

from imagesearch.config import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"
BUCKET = "imagesearch-images"


def sample(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text("utf-8"))
    return result


def s3_event(
    key: str,
    *,
    bucket: str = BUCKET,
    size: int = 1,
    etag: str | None = None,
    sequencer: str = "0A1B2C3D4E5F678901",
) -> dict[str, Any]:
    """A direct S3 notification for `key` (encoded as S3 encodes it)."""
    event = sample("s3-put.json")
    record = event["Records"][0]["s3"]
    record["bucket"]["name"] = bucket
    record["object"].update(
        key=quote_plus(key, safe="/"), size=size, eTag=etag or uuid.uuid4().hex, sequencer=sequencer
    )
    return event


def eventbridge_event(
    key: str, *, bucket: str = BUCKET, size: int = 1, etag: str | None = None
) -> dict[str, Any]:
    event = sample("eventbridge-object-created.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, size=size, etag=etag or uuid.uuid4().hex)
    return event


def sqs_event(*bodies: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
    """An SQS batch, one message per body (each an S3 notification or any other payload)."""
    template = sample("sqs-s3-put.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = json.dumps(body)
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        records.append(record)
    return {"Records": records}
