"""The local stack in CloudEvents mode (`imagesearch dev --events cloudevents`): the path a Knative or Cloud
Run user relies on, end to end over real HTTP: upload -> object stored -> CloudEvent POSTed to the stack's
own /events -> ready and searchable."""

from __future__ import annotations

from pathlib import Path

import httpx
from support.images import make_image
from support.live import live_stack

from imagesearch.client import Client


def test_uploads_become_ready_through_cloudevents_posted_over_http(
    tmp_path: Path, model_bundle: Path
) -> None:
    with (
        live_stack(tmp_path / "stack", event_delivery="cloudevents", model_dir=model_bundle) as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as client,
        Client(stack.base_url) as sdk,
    ):
        poster = stack._poster
        assert poster is not None and poster.url == f"{stack.base_url}/events"

        # A multipart upload...
        picture = make_image(color="red", shape="circle")
        created = client.post("/images", files={"file": ("red circle ☃.png", picture)}, data={"tags": "demo"})
        assert created.status_code == 201, created.text
        assert sdk.wait_ready(created.json()["id"], timeout=60).status == "ready"

        # ...and a direct one: the bytes PUT to the presigned URL are the event's source.
        data = make_image(color="blue", shape="square")
        announced = client.post(
            "/uploads", json={"filename": "blue.png", "content_type": "image/png", "size": len(data)}
        )
        assert announced.status_code == 201, announced.text
        upload = announced.json()
        put = httpx.put(upload["upload_url"], content=data, headers=upload["headers"])
        assert put.status_code in (200, 201, 204), put.text
        assert sdk.wait_ready(upload["id"], timeout=60).status == "ready"

        assert poster.delivered == 2  # both went over HTTP, none through the in-process handler
        found = client.post("/search", json={"query": "demo", "mode": "keyword"}).json()["results"]
        assert [r["id"] for r in found] == [created.json()["id"]]
