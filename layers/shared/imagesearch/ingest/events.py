"""Object-created event shapes: S3 notifications (direct or inside SQS messages) and EventBridge.

`parse_event` turns any of them into `ObjectEvent`s; the `*_record` builders make the exact JSON that AWS
sends, for the local stack and the tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus


@dataclass(frozen=True)
class ObjectEvent:
    """One object-created notification, key decoded."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    sequencer: str | None
    event_name: str


class UnrecognisedEvent(ValueError):
    """The payload is none of the shapes the embed function accepts."""


def is_test_event(body: Mapping[str, Any]) -> bool:
    """S3 sends {"Event": "s3:TestEvent"} when a notification is configured: nothing to do."""
    return body.get("Event") == "s3:TestEvent"


def s3_records(body: Mapping[str, Any]) -> Iterator[ObjectEvent]:
    """ObjectEvents from an S3 notification body ({"Records": [...]}); non-create records are skipped."""
    for record in body.get("Records", []):
        if record.get("eventSource") != "aws:s3":
            raise UnrecognisedEvent(f"unexpected record source {record.get('eventSource')!r}")
        name = str(record.get("eventName", ""))
        if not name.startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        yield ObjectEvent(
            bucket=s3["bucket"]["name"],
            # S3 sends keys form-encoded: "my photo.jpg" arrives as "my+photo.jpg".
            key=unquote_plus(obj["key"]),
            size=obj.get("size"),
            etag=obj.get("eTag"),
            sequencer=obj.get("sequencer"),
            event_name=name,
        )


def eventbridge_record(event: Mapping[str, Any]) -> ObjectEvent | None:
    """An ObjectEvent from an EventBridge "Object Created" event (keys are not encoded there)."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return None
    detail = event["detail"]
    obj = detail["object"]
    return ObjectEvent(
        bucket=detail["bucket"]["name"],
        key=obj["key"],
        size=obj.get("size"),
        etag=obj.get("etag"),
        sequencer=obj.get("sequencer"),
        event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")),
    )


def parse_body(body: Mapping[str, Any]) -> list[ObjectEvent]:
    """ObjectEvents from one S3 notification or EventBridge event (an SQS message body, or a direct event)."""
    if is_test_event(body):
        return []
    if "Records" in body:
        return list(s3_records(body))
    event = eventbridge_record(body)
    if event is not None:
        return [event]
    raise UnrecognisedEvent("neither an S3 notification nor an EventBridge Object Created event")


# --- builders of the AWS shapes -------------------------------------------------------------------------


def s3_notification(
    *, bucket: str, key: str, size: int, etag: str | None, sequencer: str, event_time: datetime | None = None
) -> dict[str, Any]:
    """The S3 event notification (version 2.1) for one ObjectCreated:Put, as S3 sends it."""
    when = (event_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": when,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "LOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": "local",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "imagesearch-originals",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCAL"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": sequencer,
                    },
                },
            }
        ]
    }


def sqs_message(
    body: Mapping[str, Any], *, receive_count: int = 1, message_id: str | None = None
) -> dict[str, Any]:
    """One SQS record as the Lambda event source mapping delivers it."""
    now_ms = str(int(datetime.now(UTC).timestamp() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:imagesearch-ingest",
        "awsRegion": "us-east-1",
    }
