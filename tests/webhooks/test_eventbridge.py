"""EventBridge: committed image events are put on the bus (read back through a rule to an SQS queue, in
moto), and a bus that fails never fails ingestion or a delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from support.auth import Caller
from support.images import encode, make_picture
from support.ingest import ingest_pending

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.ingest.processor import Outcome
from imagesearch.runtime import configure, get_runtime
from imagesearch.webhooks.publisher import EventBridgePublisher, NoPublisher

REGION = "us-east-1"
BUS = "imagesearch-test"
RED = encode(make_picture(color="red", shape="circle", size=(96, 96)), "PNG")


@pytest.fixture
def bus_queue() -> Iterator[str]:
    """A bus whose rule on source `imagesearch` sends every event to an SQS queue; the queue's URL."""
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name=BUS)
        queue = sqs.create_queue(QueueName="image-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="image-events", EventBusName=BUS, EventPattern=json.dumps({"source": ["imagesearch"]})
        )
        events.put_targets(Rule="image-events", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
        yield queue


def received(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_ready_and_deleted_images_are_put_on_the_bus(
    hook_settings: Settings, client: TestClient, alice: Caller, db: Database, bus_queue: str
) -> None:
    publisher = EventBridgePublisher(BUS, lambda: boto3.client("events", region_name=REGION))
    configure(hook_settings, publisher=publisher)
    image = client.post("/images", headers=alice.headers, files={"file": ("x.png", RED)}).json()

    assert ingest_pending(db) == [Outcome.READY]
    assert client.delete(f"/images/{image['id']}", headers=alice.headers).status_code == 204

    got = received(bus_queue)
    assert [e["detail-type"] for e in got] == ["imagesearch.image.ready", "imagesearch.image.deleted"]
    assert {e["source"] for e in got} == {"imagesearch"}
    with db.connection() as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = 'alice-corp'").fetchone()
    assert row is not None
    assert got[0]["detail"] == {"tenant_id": str(row[0]), "image_id": image["id"], "status": "ready"}
    assert got[1]["detail"] == {"tenant_id": str(row[0]), "image_id": image["id"], "status": "deleted"}


def test_the_runtime_puts_events_on_the_configured_bus_only(hook_settings: Settings) -> None:
    assert isinstance(get_runtime().publisher, NoPublisher)
    runtime = configure(hook_settings.model_copy(update={"eventbridge_bus_name": BUS}))
    assert isinstance(runtime.publisher, EventBridgePublisher) and runtime.publisher.bus_name == BUS


class BrokenEvents:
    """An EventBridge client that cannot reach the service, or whose entries are refused."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls = 0

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.mode == "raise":
            raise ConnectionError("EventBridge is unreachable")
        entries = kwargs["Entries"]
        return {
            "FailedEntryCount": len(entries),
            "Entries": [{"ErrorCode": "InternalFailure"} for _ in entries],
        }


@pytest.mark.parametrize("mode", ["raise", "refuse"])
def test_a_failing_bus_fails_neither_ingestion_nor_a_delete(
    hook_settings: Settings, client: TestClient, alice: Caller, db: Database, mode: str
) -> None:
    broken = BrokenEvents(mode)
    configure(hook_settings, publisher=EventBridgePublisher(BUS, lambda: broken))
    image = client.post("/images", headers=alice.headers, files={"file": ("x.png", RED)}).json()

    assert ingest_pending(db) == [Outcome.READY]
    assert client.delete(f"/images/{image['id']}", headers=alice.headers).status_code == 204
    assert broken.calls == 2
    assert client.get(f"/images/{image['id']}", headers=alice.headers).status_code == 404
