"""The local stack's CloudEvents mode (`imagesearch dev --events cloudevents`): the event queue POSTs each
object-created event over HTTP to the embed service's POST /events, as Eventarc or a Knative Trigger
pushes it, instead of calling the embed handler in process.

Each event travels as Eventarc sends a Cloud Storage one: a binary-mode CloudEvent of type
`google.cloud.storage.object.v1.finalized`, made with the CloudEvents SDK. A 2xx acknowledges it; any
other answer, or no answer, fails the message, which the queue retries with backoff and, after its last
try, moves to the dead-letter directory (a Knative Trigger's retry and dead-letter sink).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from imagesearch.ingest.cloudevents import GCS_FINALIZED
from imagesearch.ingest.events import UnrecognisedEvent, parse_body
from imagesearch.logs import logger

Handler = Any  # the in-process embed handler, for messages that are not object-created events


def gcs_finalized(
    *, bucket: str, key: str, size: int | None, etag: str | None, sequencer: str | None
) -> CloudEvent:
    """The CloudEvent Eventarc delivers when an object is written to a Cloud Storage bucket."""
    data: dict[str, Any] = {"kind": "storage#object", "bucket": bucket, "name": key, "etag": etag}
    if size is not None:
        data["size"] = str(size)  # an int64: a string in GCS's JSON
    if sequencer:
        data["generation"] = str(int(sequencer, 16))
    return CloudEvent(
        attributes={
            "id": str(uuid.uuid4()),
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
            "type": GCS_FINALIZED,
            "subject": f"objects/{key}",
            "time": datetime.now(UTC),
            "datacontenttype": "application/json",
        },
        data=data,
    )


class CloudEventPoster:
    """A stand-in for the embed handler, with its signature (SQS-shaped batch in, partial failures out),
    that delivers each message's objects to `url` as CloudEvents over HTTP."""

    def __init__(self, url: str, *, fallback: Handler, timeout: float = 120.0) -> None:
        self.url = url
        self._fallback = fallback
        self._http = httpx.Client(timeout=timeout)
        self.delivered = 0  # events the service acknowledged

    def close(self) -> None:
        self._http.close()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            if not self._deliver(record, context):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _deliver(self, record: dict[str, Any], context: Any) -> bool:
        try:
            objects = parse_body(json.loads(record["body"]))
        except (ValueError, KeyError, UnrecognisedEvent):
            # Not an object-created event (a back-fill message): the embed handler takes it, as on AWS.
            response = self._fallback({"Records": [record]}, context)
            return not (response or {}).get("batchItemFailures")
        for obj in objects:
            message = to_binary(
                gcs_finalized(
                    bucket=obj.bucket, key=obj.key, size=obj.size, etag=obj.etag, sequencer=obj.sequencer
                ),
                JSONFormat(),
            )
            try:
                response = self._http.post(self.url, headers=message.headers, content=message.body)
            except httpx.HTTPError as e:
                logger.warning("event delivery failed", extra={"url": self.url, "error": repr(e)})
                return False
            if not response.is_success:
                logger.warning(
                    "event delivery refused",
                    extra={"url": self.url, "status": response.status_code, "body": response.text[:500]},
                )
                return False
            self.delivered += 1
        return True
