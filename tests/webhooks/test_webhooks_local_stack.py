"""The local stack sends webhooks by itself (its dispatcher thread), over real HTTP both ways; and the
address check runs again when sending, so a URL that turned private after subscribing gets nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from support.auth import Caller
from support.images import encode, make_picture
from support.live import live_stack
from support.webhooks import Receiver, receiving

from imagesearch.db import Database
from imagesearch.runtime import get_runtime
from imagesearch.webhooks import signing
from imagesearch.webhooks.dispatch import Dispatcher
from imagesearch.webhooks.sender import HttpSender

RED = encode(make_picture(color="red", shape="circle", size=(96, 96)), "PNG")


def wait_for(receiver: Receiver, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"got {len(receiver.received)} of {count} webhooks"
        time.sleep(0.05)


def test_the_local_stack_delivers_ready_and_deleted_events(tmp_path: Path, model_bundle: Path) -> None:
    with (
        receiving() as receiver,
        live_stack(tmp_path / "stack", model_dir=model_bundle, webhook_allow_private_urls=True) as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as http,
    ):
        hook = http.post("/webhooks", json={"url": receiver.url, "events": ["image.ready", "image.deleted"]})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        image = http.post("/images", files={"file": ("red.png", RED)}).json()

        wait_for(receiver, 1)
        assert http.get(f"/images/{image['id']}").json()["status"] == "ready"
        assert http.delete(f"/images/{image['id']}").status_code == 204
        wait_for(receiver, 2)

        assert [r.json["type"] for r in receiver.received] == ["image.ready", "image.deleted"]
        for got in receiver.received:
            signing.verify(secret, got.body, got.headers[signing.SIGNATURE_HEADER])
        log = http.get(f"/webhooks/{hook.json()['id']}/deliveries").json()["items"]
        assert [(d["event_type"], d["status"]) for d in log] == [
            ("image.deleted", "delivered"),
            ("image.ready", "delivered"),
        ]


def test_the_address_is_checked_again_when_sending(
    client: TestClient, alice: Caller, db: Database, receiver: Receiver
) -> None:
    """Subscribed while private addresses were allowed (or while the name resolved elsewhere): at send
    time, with the check on, nothing is sent and the attempt says why."""
    hook = client.post(
        "/webhooks", headers=alice.headers, json={"url": receiver.url, "events": ["image.deleted"]}
    )
    image = client.post("/images", headers=alice.headers, files={"file": ("x.png", RED)}).json()
    client.delete(f"/images/{image['id']}", headers=alice.headers)
    strict = Dispatcher(get_runtime().database, HttpSender(timeout_seconds=2.0, allow_private=False))

    assert strict.run() == 1

    assert receiver.received == []
    [delivery] = client.get(f"/webhooks/{hook.json()['id']}/deliveries", headers=alice.headers).json()[
        "items"
    ]
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("refused:") and "public addresses only" in delivery["last_error"]
