"""Object-created event shapes: S3 notifications (direct, inside SQS messages, or posted by an
S3-compatible server such as MinIO or Ceph) and EventBridge.

`parse_body` turns any of them into `ObjectEvent`s (the local stack builds the same JSON in
imagesearch.local.aws_events).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


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
    """ObjectEvents from an S3 notification body ({"Records": [...]}); non-create records are skipped.

    S3-compatible servers send the same records with their own source ("minio:s3", "ceph:s3") and MinIO
    prefixes the name ("s3:ObjectCreated:Put"); both are read as S3's.
    """
    for record in body.get("Records", []):
        source = record.get("eventSource")
        if not (isinstance(source, str) and source.endswith(":s3")):
            raise UnrecognisedEvent(f"unexpected record source {source!r}")
        name = str(record.get("eventName", "")).removeprefix("s3:")
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
