"""Events to webhooks: signed, for the image's own tenant only, retried with backoff, never in the way of
ingestion. The receiver runs on 127.0.0.1 (the settings allow it); the dispatcher's clock is moved."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller
from support.images import encode, make_picture
from support.ingest import ingest_pending
from support.webhooks import MovableClock, Receiver

from imagesearch.cli.main import main
from imagesearch.db import Database
from imagesearch.ingest.processor import Outcome
from imagesearch.local.context import LocalLambdaContext
from imagesearch.local.functions import load_function
from imagesearch.runtime import get_runtime
from imagesearch.webhooks import signing
from imagesearch.webhooks.dispatch import Dispatcher

RED = encode(make_picture(color="red", shape="circle", size=(96, 96)), "PNG")
BLUE = encode(make_picture(color="blue", shape="square", size=(96, 96)), "PNG")
ALL_EVENTS = ["image.ready", "image.failed", "image.deleted"]


def subscribe(client: TestClient, caller: Caller, url: str, events: list[str] = ALL_EVENTS) -> dict[str, Any]:
    response = client.post("/webhooks", headers=caller.headers, json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()
    return hook


def upload(client: TestClient, caller: Caller, data: bytes) -> dict[str, Any]:
    response = client.post("/images", headers=caller.headers, files={"file": ("x.png", data)})
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()
    return image


def tenant_of(db: Database, image_id: str) -> str:
    with db.connection() as conn:
        row = conn.execute("SELECT tenant_id FROM images WHERE id = %s", (image_id,)).fetchone()
    assert row is not None
    return str(row[0])


def deliveries(client: TestClient, caller: Caller, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(f"/webhooks/{hook['id']}/deliveries", headers=caller.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_ready_image_is_delivered_signed_to_its_tenants_webhook(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    hook = subscribe(client, alice, receiver.url)
    image = upload(client, alice, RED)

    assert ingest_pending(db) == [Outcome.READY]
    assert receiver.received == []  # ingestion only wrote the outbox row
    assert dispatcher.run() == 1

    [got] = receiver.received
    assert got.path == "/hooks/imagesearch?source=test"
    assert got.headers["Content-Type"] == "application/json"
    signing.verify(hook["secret"], got.body, got.headers[signing.SIGNATURE_HEADER])
    with pytest.raises(signing.InvalidSignature):
        signing.verify("whsec_someone_else", got.body, got.headers[signing.SIGNATURE_HEADER])
    body = got.json
    assert body["type"] == "image.ready" == got.headers["Imagesearch-Event-Type"]
    assert body["id"] == got.headers["Imagesearch-Event-Id"]
    assert body["data"] == {"image_id": image["id"], "status": "ready"}
    assert body["tenant_id"] == tenant_of(db, image["id"])
    assert set(body) == {"id", "type", "created_at", "tenant_id", "data"}
    [delivery] = deliveries(client, alice, hook)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200 and delivery["delivered_at"] is not None
    assert delivery["event_id"] == body["id"] and delivery["event_type"] == "image.ready"
    assert dispatcher.run() == 0  # nothing is sent twice


def test_a_failed_image_and_a_deleted_one_are_announced(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    hook = subscribe(client, alice, receiver.url)
    response = client.post(
        "/uploads",
        headers=alice.headers,
        json={"filename": "bad.png", "content_type": "image/png", "size": 12},
    )
    bad = response.json()["image"]
    get_runtime().storage.put(
        f"originals/{tenant_of(db, bad['id'])}/{bad['id']}", b"not an image", content_type="image/png"
    )
    assert ingest_pending(db) == [Outcome.FAILED]
    good = upload(client, alice, BLUE)
    ingest_pending(db)
    assert client.delete(f"/images/{good['id']}", headers=alice.headers).status_code == 204

    assert dispatcher.run() == 3
    [failed] = receiver.of_type("image.failed")
    assert failed.json["data"]["image_id"] == bad["id"] and failed.json["data"]["status"] == "failed"
    assert failed.json["data"]["reason"].startswith(("unsupported_format", "corrupt", "truncated"))
    [deleted] = receiver.of_type("image.deleted")
    assert deleted.json["data"] == {"image_id": good["id"], "status": "deleted"}
    for got in receiver.received:
        signing.verify(hook["secret"], got.body, got.headers[signing.SIGNATURE_HEADER])
    assert sorted(d["event_type"] for d in deliveries(client, alice, hook)) == [
        "image.deleted",
        "image.failed",
        "image.ready",
    ]


def test_only_the_subscribed_event_types_are_sent(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    subscribe(client, alice, receiver.url, events=["image.deleted"])
    image = upload(client, alice, RED)
    ingest_pending(db)
    assert dispatcher.run() == 0
    client.delete(f"/images/{image['id']}", headers=alice.headers)
    assert dispatcher.run() == 1
    assert [r.headers["Imagesearch-Event-Type"] for r in receiver.received] == ["image.deleted"]


def test_another_tenants_subscription_never_receives(
    client: TestClient, alice: Caller, bob: Caller, db: Database, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    bobs = subscribe(client, bob, receiver.url + "&tenant=bob")
    alices = subscribe(client, alice, receiver.url + "&tenant=alice")
    image = upload(client, alice, RED)
    ingest_pending(db)
    client.delete(f"/images/{image['id']}", headers=alice.headers)

    assert dispatcher.run() == 2
    assert {r.path.rsplit("=", 1)[1] for r in receiver.received} == {"alice"}
    assert deliveries(client, bob, bobs) == []
    assert len(deliveries(client, alice, alices)) == 2


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(
    client: TestClient,
    alice: Caller,
    db: Database,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: MovableClock,
) -> None:
    """GIVEN a receiver answering 500 then 200 WHEN the dispatcher runs as time passes THEN the delivery
    is retried after the backoff, not before, and its log shows each attempt."""
    hook = subscribe(client, alice, receiver.url, events=["image.ready"])
    receiver.statuses[:] = [500, 503]
    upload(client, alice, RED)
    ingest_pending(db)

    assert dispatcher.run() == 1
    [delivery] = deliveries(client, alice, hook)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("pending", 1, 500)
    assert delivery["last_error"] == "HTTP 500" and delivery["next_attempt_at"] is not None
    clock.advance(5)
    assert dispatcher.run() == 0  # the first backoff is 10 s here
    clock.advance(6)
    assert dispatcher.run() == 1
    [delivery] = deliveries(client, alice, hook)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("pending", 2, 503)
    clock.advance(21)
    assert dispatcher.run() == 1
    [delivery] = deliveries(client, alice, hook)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 200)
    assert (
        len(receiver.received) == 3
        and len({r.headers["Imagesearch-Event-Id"] for r in receiver.received}) == 1
    )

    # A receiver that keeps failing: `failed` after max_attempts (3 here), never sent again.
    receiver.statuses[:] = [500] * 10
    image = upload(client, alice, BLUE)
    ingest_pending(db)
    for _ in range(5):
        dispatcher.run()
        clock.advance(100)
    newest = deliveries(client, alice, hook)[0]
    assert (newest["status"], newest["attempts"], newest["next_attempt_at"]) == ("failed", 3, None)
    assert sum(1 for r in receiver.received if image["id"] in r.body.decode()) == 3


def test_a_dead_receiver_neither_slows_nor_blocks_ingestion(
    client: TestClient, alice: Caller, db: Database
) -> None:
    """A receiver that accepts connections and never answers: ingestion makes no connection to it at all
    (it only writes the outbox row), and the image is ready; the dispatcher alone meets the timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        port = listener.getsockname()[1]
        hook = subscribe(client, alice, f"http://127.0.0.1:{port}/hook")
        image = upload(client, alice, RED)

        assert ingest_pending(db) == [Outcome.READY]
        assert client.get(f"/images/{image['id']}", headers=alice.headers).json()["status"] == "ready"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
        [delivery] = deliveries(client, alice, hook)
        assert (delivery["status"], delivery["attempts"]) == ("pending", 0)
    finally:
        listener.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound, not listening: connections are refused


def test_a_connection_error_is_recorded_and_retried(
    client: TestClient, alice: Caller, db: Database, dispatcher: Dispatcher, refused_port: int
) -> None:
    hook = subscribe(client, alice, f"http://127.0.0.1:{refused_port}/hook", events=["image.ready"])
    upload(client, alice, RED)
    ingest_pending(db)
    assert dispatcher.run() == 1
    [delivery] = deliveries(client, alice, hook)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "ConnectionRefusedError" in delivery["last_error"]


def test_the_webhooks_function_sends_what_is_due(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver
) -> None:
    """functions/webhooks/app.py, invoked as the schedule would, with the runtime's own dispatcher."""
    subscribe(client, alice, receiver.url, events=["image.ready"])
    upload(client, alice, RED)
    ingest_pending(db)

    answer = load_function("webhooks").handler({}, LocalLambdaContext(function_name="webhooks"))

    assert answer == {"attempted": 1}
    assert [r.headers["Imagesearch-Event-Type"] for r in receiver.received] == ["image.ready"]


def test_the_dispatch_command_sends_what_is_due(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """`imagesearch webhooks dispatch`, what a CronJob or a Cloud Run job runs outside AWS."""
    subscribe(client, alice, receiver.url, events=["image.ready"])
    upload(client, alice, RED)
    ingest_pending(db)

    assert main(["webhooks", "dispatch", "--seconds", "30"]) == 0

    assert [r.headers["Imagesearch-Event-Type"] for r in receiver.received] == ["image.ready"]
    assert "attempted: 1" in capsys.readouterr().out
    assert main(["webhooks", "dispatch"]) == 0  # nothing due: nothing sent again
    assert len(receiver.received) == 1
