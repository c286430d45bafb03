"""Object-created events pushed over HTTP (POST /events of the embed service): CloudEvents 1.0 from Cloud
Storage, Azure Blob Storage and S3-shaped sources in every content mode, and MinIO's webhook, parsed and
ingested against real Postgres, storage and the ONNX model."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from cloudevents.core.bindings.http import HTTPMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from fastapi.testclient import TestClient
from support.events import BUCKET, s3_event, sample
from support.images import make_image
from support.ingest import FlakyStorage

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.errors import MalformedEvent
from imagesearch.ingest.cloudevents import BATCH, MAX_BATCH, Delivery, parse_delivery
from imagesearch.ingest.events import ObjectEvent
from imagesearch.ingest.processor import sequencer_order
from imagesearch.local.cloudevents import gcs_finalized
from imagesearch.local.functions import load_function
from imagesearch.runtime import configure, get_runtime
from imagesearch.storage import ObjectStorage

ODD_KEY = f"originals/{DEFAULT_TENANT_ID}/naïve 写真 +%20 ☃.jpg"


# --- the events, as their sources send them ----------------------------------------------------------------
def gcs_event(key: str, *, bucket: str = BUCKET, generation: str = "1764495012345678") -> dict[str, Any]:
    event = sample("cloudevent-gcs-finalized.json")
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"objects/{key}"
    event["data"].update(bucket=bucket, name=key, generation=generation, etag=uuid.uuid4().hex)
    return event


def azure_event(key: str, *, container: str = BUCKET, subject: bool = True) -> dict[str, Any]:
    event = sample("cloudevent-azure-blob-created.json")
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/{key}"
    event["data"]["url"] = f"https://imagesearch.blob.core.windows.net/{container}/{quote(key)}"
    if not subject:
        del event["subject"]
    return event


def minio_webhook(key: str, *, bucket: str = BUCKET) -> dict[str, Any]:
    event = sample("minio-put.json")
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    event["Records"][0]["s3"]["object"]["key"] = quote_plus(key, safe="")  # MinIO escapes the slashes too
    return event


def s3_cloudevent(key: str, **values: Any) -> dict[str, Any]:
    """What a Knative source for an S3-compatible bucket sends: the S3 notification as the data."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "minio://imagesearch",
        "type": "com.example.s3.object.created",
        "datacontenttype": "application/json",
        "data": s3_event(key, **values),
    }


def binary(event: dict[str, Any]) -> HTTPMessage:
    """The structured JSON of an event in binary content mode (attributes as ce- headers), by the SDK."""
    return to_binary(JSONFormat().read(None, json.dumps(event)), JSONFormat())


def structured(event: dict[str, Any]) -> HTTPMessage:
    return to_structured(JSONFormat().read(None, json.dumps(event)), JSONFormat())


def batch(*events: dict[str, Any]) -> HTTPMessage:
    return HTTPMessage(headers={"content-type": BATCH}, body=json.dumps(list(events)).encode())


def plain(body: dict[str, Any]) -> HTTPMessage:
    return HTTPMessage(headers={"content-type": "application/json"}, body=json.dumps(body).encode())


def parsed(message: HTTPMessage) -> Delivery:
    return parse_delivery(message.headers, message.body)


def keys(delivery: Delivery) -> list[tuple[str, str]]:
    return [(obj.bucket, obj.key) for obj in delivery.objects]


# --- parsing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [binary, structured], ids=["binary", "structured"])
def test_a_cloud_storage_event_names_the_object_and_orders_generations_as_sequencers(mode: Any) -> None:
    delivery = parsed(mode(gcs_event(ODD_KEY, generation="1764495012345678")))
    [obj] = delivery.objects
    assert (obj.bucket, obj.key, obj.size) == (BUCKET, ODD_KEY, 52311)
    assert obj.sequencer == f"{1764495012345678:X}"
    assert len(delivery.event_ids) == 1
    # A later generation of the same name is a later sequencer, whatever the digit counts.
    older = parsed(mode(gcs_event(ODD_KEY, generation="999"))).objects[0]
    assert sequencer_order(older.sequencer) < sequencer_order(obj.sequencer)


@pytest.mark.parametrize("from_subject", [True, False], ids=["subject", "url"])
def test_an_azure_blob_event_names_the_container_and_blob(from_subject: bool) -> None:
    [obj] = parsed(structured(azure_event(ODD_KEY, subject=from_subject))).objects
    assert (obj.bucket, obj.key, obj.size) == (BUCKET, ODD_KEY, 52311)
    assert obj.etag == "0x8D76C39E4407333"


def test_s3_shaped_data_and_minio_webhooks_name_the_decoded_key() -> None:
    assert keys(parsed(binary(s3_cloudevent(ODD_KEY)))) == [(BUCKET, ODD_KEY)]
    webhook = parsed(plain(minio_webhook(ODD_KEY)))
    assert keys(webhook) == [(BUCKET, ODD_KEY)] and webhook.event_ids == []
    assert webhook.objects[0].event_name == "ObjectCreated:Put"


def test_a_batch_carries_events_of_every_source() -> None:
    delivery = parsed(batch(gcs_event("a.jpg"), azure_event("b.jpg"), s3_cloudevent("c.jpg")))
    assert keys(delivery) == [(BUCKET, "a.jpg"), (BUCKET, "b.jpg"), (BUCKET, "c.jpg")]
    assert len(delivery.event_ids) == 3


def test_other_events_of_the_same_sources_have_nothing_to_do() -> None:
    deleted = gcs_event("a.jpg") | {"type": "google.cloud.storage.object.v1.deleted"}
    blob_deleted = azure_event("b.jpg") | {"type": "Microsoft.Storage.BlobDeleted"}
    removed = minio_webhook("c.jpg")
    removed["Records"][0]["eventName"] = "s3:ObjectRemoved:Delete"
    for message in (structured(deleted), binary(blob_deleted), plain(removed)):
        assert parsed(message).objects == []


def _huge_batch() -> HTTPMessage:
    return batch(*[gcs_event(f"{i}.jpg") for i in range(MAX_BATCH + 1)])


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    del event[name]
    return event


BAD_DELIVERIES: dict[str, tuple[dict[str, str], bytes]] = {
    "not json": ({"content-type": "application/cloudevents+json"}, b"{not json"),
    "json array, not an event": ({"content-type": "application/cloudevents+json"}, b"[1, 2]"),
    "no id": (
        {"content-type": "application/cloudevents+json"},
        json.dumps(_without(gcs_event("a.jpg"), "id")).encode(),
    ),
    "unknown spec version": (
        {"content-type": "application/cloudevents+json"},
        json.dumps(gcs_event("a.jpg") | {"specversion": "9.9"}).encode(),
    ),
    "binary without a type": (
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x", "content-type": "application/json"},
        b"{}",
    ),
    "unknown type, no S3 data": (
        {"content-type": "application/cloudevents+json"},
        json.dumps(gcs_event("a.jpg") | {"type": "com.example.other", "data": {"hello": "☃"}}).encode(),
    ),
    "GCS data without a name": (
        {"content-type": "application/cloudevents+json"},
        json.dumps(gcs_event("a.jpg") | {"data": {"bucket": BUCKET}}).encode(),
    ),
    "Azure event naming no blob": (
        {"content-type": "application/cloudevents+json"},
        json.dumps(
            _without(azure_event("a.jpg"), "subject") | {"data": {"url": "https://x.blob.core.windows.net/"}}
        ).encode(),
    ),
    "batch of strings": ({"content-type": BATCH}, b'["a", "b"]'),
    "batch over the limit": (_huge_batch().headers, _huge_batch().body),
    "plain JSON of another shape": ({"content-type": "application/json"}, b'{"hello": "world"}'),
    "undecodable bytes": ({"content-type": "application/json"}, b"\xff\xfe\x00garbage"),
    "odd unicode in a header": (
        {"ce-specversion": "1.0", "ce-id": "%E2%98%83", "ce-source": "%ZZ", "ce-type": "\u202e\u0000"},
        b"{}",
    ),
}


@pytest.mark.parametrize("name", list(BAD_DELIVERIES))
def test_a_delivery_that_is_no_object_event_is_malformed(name: str) -> None:
    headers, body = BAD_DELIVERIES[name]
    with pytest.raises(MalformedEvent):
        parse_delivery(headers, body)


# --- POST /events of the embed service, on real components -------------------------------------------------
@pytest.fixture
def events_api(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(load_function("embed").app, raise_server_exceptions=False) as client:
        yield client


def stored_pending(db: Database, storage: ObjectStorage, data: bytes, *, name: str | None = None) -> str:
    """A pending record and its original in storage, as a direct upload leaves them; returns the key."""
    image_id = uuid.uuid4()
    key = f"originals/{DEFAULT_TENANT_ID}/{name or image_id}"
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO images (id, tenant_id, storage_key, filename) VALUES (%s, %s, %s, 'x.png')",
            (image_id, DEFAULT_TENANT_ID, key),
        )
    storage.put(key, data, content_type="application/octet-stream")
    return key


def status_of(db: Database, key: str) -> str:
    with db.connection() as conn:
        row = conn.execute("SELECT status FROM images WHERE storage_key = %s", (key,)).fetchone()
    assert row is not None
    return str(row[0])


def post(client: TestClient, message: HTTPMessage, **extra: str | bytes) -> Any:
    """POST the message to /events, with `extra` headers (bytes as sent, for values that are not ASCII)."""
    headers = {name.encode(): value.encode() for name, value in message.headers.items()}
    headers |= {name.encode(): v if isinstance(v, bytes) else v.encode() for name, v in extra.items()}
    return client.post("/events", headers=headers, content=message.body)


@pytest.mark.parametrize(
    "deliver",
    [
        lambda key: binary(gcs_event(key)),
        lambda key: structured(azure_event(key)),
        lambda key: batch(s3_cloudevent(key)),
        lambda key: plain(minio_webhook(key)),
    ],
    ids=["gcs-binary", "azure-structured", "s3-batched", "minio-webhook"],
)
def test_a_pushed_event_makes_the_image_ready_and_a_redelivery_changes_nothing(
    events_api: TestClient, db: Database, deliver: Any
) -> None:
    storage = get_runtime().storage
    key = stored_pending(db, storage, make_image(color="red", shape="circle"), name="naïve 写真 +%20.png")
    message = deliver(key)

    first = post(events_api, message)
    assert first.status_code == 200, first.text
    assert first.json()["outcomes"] == ["ready"]
    assert status_of(db, key) == "ready"
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.storage_key = %s",
            (key,),
        ).fetchone()
    assert row is not None and row[0] == 1

    again = post(events_api, message)  # at-least-once delivery: the same event twice
    assert again.status_code == 200 and again.json()["outcomes"] == ["skipped"]


def test_bytes_that_are_no_image_are_recorded_failed_and_acknowledged(
    events_api: TestClient, db: Database
) -> None:
    key = stored_pending(db, get_runtime().storage, b"GIF89a but not really")
    response = post(events_api, binary(gcs_event(key)))
    assert response.status_code == 200 and response.json()["outcomes"] == ["failed"]
    assert status_of(db, key) == "failed"  # permanent: no retry would help


def test_a_transient_fault_answers_503_and_the_redelivery_succeeds(
    events_api: TestClient, db: Database, settings: Settings
) -> None:
    real = get_runtime().storage
    good = stored_pending(db, real, make_image(color="blue", shape="square"))
    flaky = stored_pending(db, real, make_image(color="green", shape="triangle"))
    configure(settings, storage=FlakyStorage(real, failing={flaky}))
    message = batch(gcs_event(good), gcs_event(flaky))

    response = post(events_api, message)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" in response.headers
    assert (status_of(db, good), status_of(db, flaky)) == ("ready", "pending")

    configure(settings, storage=real)  # storage is back; the platform delivers the batch again
    retried = post(events_api, message)
    assert retried.status_code == 200 and retried.json()["outcomes"] == ["skipped", "ready"]
    assert status_of(db, flaky) == "ready"


@pytest.mark.parametrize("name", ["not json", "unknown type, no S3 data", "batch over the limit", "no id"])
def test_a_bad_delivery_is_a_logged_400_problem(
    events_api: TestClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers, body = BAD_DELIVERIES[name]
    response = events_api.post("/events", headers=headers, content=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400
    assert any(r.getMessage() == "malformed event delivery refused" for r in caplog.records)


def test_a_body_over_the_limit_is_refused_unread(events_api: TestClient) -> None:
    body = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    response = events_api.post("/events", headers={"content-type": BATCH}, content=body)
    assert response.status_code == 413


def test_an_events_token_when_set_is_required(settings: Settings, db: Database) -> None:
    configure(settings.model_copy(update={"events_token": "s3cr3t"}))
    key = stored_pending(db, get_runtime().storage, make_image(color="red", shape="circle"))
    message = binary(gcs_event(key))
    with TestClient(load_function("embed").app, raise_server_exceptions=False) as client:
        for wrong in (
            {},
            {"authorization": "Bearer nope"},
            {"authorization": "Bearer s3cr3t\u00e9".encode("latin-1")},
        ):
            refused = post(client, message, **wrong)
            assert refused.status_code == 401, wrong
            assert refused.headers["content-type"] == "application/problem+json"
        assert status_of(db, key) == "pending"
        assert post(client, message, authorization="Bearer s3cr3t").status_code == 200
        assert post(client, message, authorization="s3cr3t").status_code == 200  # MinIO's bare token
    assert status_of(db, key) == "ready"


def test_the_webhook_handshake_allows_the_origin(events_api: TestClient) -> None:
    response = events_api.options("/events", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert response.status_code == 200
    assert response.headers["webhook-allowed-origin"] == "eventgrid.azure.net"


def test_object_event_fields_survive_the_sdk_round_trip() -> None:
    """The local stack's CloudEvents mode makes its events with the SDK; they read back unchanged."""
    event: CloudEvent = gcs_finalized(bucket="local", key=ODD_KEY, size=7, etag="e", sequencer="18C2F0A")
    message = to_binary(event, JSONFormat())
    assert parsed(message).objects == [
        ObjectEvent(
            bucket="local",
            key=ODD_KEY,
            size=7,
            etag="e",
            sequencer="18C2F0A",
            event_name="ObjectCreated:google.cloud.storage.object.v1.finalized",
        )
    ]
