"""Object-created events delivered over HTTP: CloudEvents 1.0 (binary, structured and batched content
modes) from Google Cloud Storage, Azure Blob Storage or any source whose data is an S3 notification, and
the plain S3-shaped JSON that an S3-compatible server's webhook (MinIO) posts.

`parse_delivery` turns one request into `ObjectEvent`s, the same the SQS path makes; the CloudEvents SDK
parses and validates every event (attributes, spec version, data content type). Anything it cannot read,
or a type this function does not handle, is a `MalformedEvent` (400: a push subscription sends it to its
dead-letter sink instead of retrying). Events of these sources that create nothing (a GCS object deleted,
an Azure blob deleted) are acknowledged with nothing to do. docs/deploy-anywhere.md lists the types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from imagesearch.errors import MalformedEvent
from imagesearch.ingest.events import ObjectEvent, UnrecognisedEvent, parse_body

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
AZURE_BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# The same sources' other events: a subscription may send them too, and nothing is to be done.
NOTHING_TO_DO = frozenset(
    {
        "google.cloud.storage.object.v1.deleted",
        "google.cloud.storage.object.v1.archived",
        "google.cloud.storage.object.v1.metadataUpdated",
        "Microsoft.Storage.BlobDeleted",
        "Microsoft.Storage.BlobTierChanged",
        "Microsoft.Storage.BlobRenamed",
        "Microsoft.Storage.DirectoryCreated",
        "Microsoft.Storage.DirectoryDeleted",
    }
)
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH = 100  # events in one batched delivery
_AZURE_SUBJECT = "/blobServices/default/containers/"

_FORMAT = JSONFormat()
REQUIRED = ("specversion", "id", "source", "type")


def _received(attributes: dict[str, Any], data: dict[str, Any] | str | bytes | None) -> BaseCloudEvent:
    """The SDK's v1.0 event, for a delivery: a producer may leave `id` and `specversion` for the SDK to
    fill in, but a received event without them is not a CloudEvent (and has nothing to dedupe by)."""
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise MalformedEvent(f"not a CloudEvent: no {', '.join(missing)}")
    if attributes["specversion"] != "1.0":
        raise MalformedEvent(f"CloudEvents {_clip(attributes['specversion'])} is not supported; send 1.0")
    return CloudEvent(attributes, data)


@dataclass(frozen=True)
class Delivery:
    """What one HTTP request delivered: the CloudEvent ids (for the log) and the objects to ingest."""

    event_ids: list[str]
    objects: list[ObjectEvent]


def _clip(value: object, limit: int = 80) -> str:
    """A value fit for an error message: printable, short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The objects one HTTP request delivers; raises MalformedEvent when it is not something to ingest."""
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == BATCH:
            events = [_read_structured(item) for item in _batch_items(body)]
        elif content_type == STRUCTURED or any(name.startswith("ce-") for name in lowered):
            events = [from_http(HTTPMessage(headers=lowered, body=body), _FORMAT, _received)]
        else:
            return Delivery(event_ids=[], objects=parse_body(_json_object(body, "the body")))
        objects = [obj for event in events for obj in object_events(event)]
    except MalformedEvent:
        raise
    except UnrecognisedEvent as e:
        raise MalformedEvent(str(e)) from e
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as e:
        # The SDK's validation errors are ValueErrors and TypeErrors (MissingRequiredAttributeError,
        # InvalidAttributeValueError...); a body that is not the JSON it claims fails the same way.
        raise MalformedEvent(f"not a valid CloudEvent: {_clip(str(e), 300)}") from e
    return Delivery(event_ids=[event.get_id() for event in events], objects=objects)


def _json_object(data: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedEvent(f"{what} is not JSON") from e
    if not isinstance(value, dict):
        raise MalformedEvent(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _batch_items(body: bytes) -> list[dict[str, Any]]:
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedEvent("the batch is not JSON") from e
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedEvent("a batch is a JSON array of CloudEvent objects")
    if len(items) > MAX_BATCH:
        raise MalformedEvent(f"a batch holds at most {MAX_BATCH} events; this one {len(items)}")
    return items


def _read_structured(item: dict[str, Any]) -> BaseCloudEvent:
    return _FORMAT.read(_received, json.dumps(item))


def object_events(event: BaseCloudEvent) -> list[ObjectEvent]:
    """The objects one CloudEvent says were created (none for a source's other events)."""
    kind = event.get_type()
    if kind in NOTHING_TO_DO:
        return []
    data = event.get_data()
    if isinstance(data, bytes | str):  # a JSON body sent with a non-JSON content type
        data = _json_object(data, "the event's data")
    if not isinstance(data, dict):
        raise MalformedEvent(f"event {_clip(event.get_id())} of type {_clip(kind)} carries no data object")
    if kind == GCS_FINALIZED:
        return [_gcs_object(data)]
    if kind == AZURE_BLOB_CREATED:
        return [_azure_blob(data, event.get_subject())]
    try:
        return parse_body(data)  # S3-shaped data, whatever the source named the type
    except UnrecognisedEvent as e:
        raise MalformedEvent(
            f"unsupported event type {_clip(kind)}: the data is no S3 notification either ({e})"
        ) from e


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"the event's data has no {name!r} string")
    return value


def _size(value: object) -> int | None:
    """GCS sends the size as a decimal string (an int64 in JSON), Azure as a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _gcs_object(data: Mapping[str, Any]) -> ObjectEvent:
    """A GCS object resource (google.events.cloud.storage.v1.StorageObjectData)."""
    generation = data.get("generation")
    # The generation orders the versions of one object name, as S3's sequencer does; the ingestor compares
    # sequencers as hex digits, so the decimal generation travels in hex.
    sequencer = None
    if isinstance(generation, int | str) and str(generation).isascii() and str(generation).isdigit():
        sequencer = f"{int(generation):X}"
    etag = data.get("etag")
    return ObjectEvent(
        bucket=_text(data, "bucket"),
        key=_text(data, "name"),  # GCS names are not URL-encoded in events
        size=_size(data.get("size")),
        etag=etag if isinstance(etag, str) else None,
        sequencer=sequencer,
        event_name="ObjectCreated:" + GCS_FINALIZED,
    )


def _azure_blob(data: Mapping[str, Any], subject: str | None) -> ObjectEvent:
    """An Event Grid BlobCreated event: the container and blob name from the subject
    (/blobServices/default/containers/<container>/blobs/<name>), else from the blob URL."""
    if subject and subject.startswith(_AZURE_SUBJECT) and "/blobs/" in subject:
        container, _, name = subject[len(_AZURE_SUBJECT) :].partition("/blobs/")
    else:
        path = unquote(urlsplit(_text(data, "url")).path).lstrip("/")
        container, _, name = path.partition("/")
    if not container or not name:
        raise MalformedEvent("the BlobCreated event names no container and blob")
    etag, sequencer = data.get("eTag"), data.get("sequencer")
    return ObjectEvent(
        bucket=container,
        key=name,
        size=_size(data.get("contentLength")),
        etag=etag if isinstance(etag, str) else None,
        # Azure's sequencer is hex, ordered per blob name like S3's.
        sequencer=sequencer if isinstance(sequencer, str) else None,
        event_name="ObjectCreated:" + AZURE_BLOB_CREATED,
    )
