"""The client against a live local stack: uploads both ways, waiting, search, pages, webhooks, async."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from PIL import Image as PILImage
from support.images import encode, make_image
from support.live import live_stack, run_async, serving

from imagesearch.client import ApiError, AsyncClient, Client, verify_webhook
from imagesearch.local.stack import LocalStack

SMALL_LIMIT = 2048  # bytes: above it the client uploads through a presigned URL


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model_bundle: Path) -> Iterator[LocalStack]:
    with live_stack(
        tmp_path_factory.mktemp("client-stack"), model_dir=model_bundle, webhook_allow_private_urls=True
    ) as running:
        yield running


@pytest.fixture
def client(stack: LocalStack) -> Iterator[Client]:
    with Client(stack.base_url, multipart_limit=SMALL_LIMIT) as value:
        yield value
        for image in list(value.list_images()):  # the next test starts from an empty stack
            value.delete_image(image)


def noisy_png(side: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(PILImage.fromarray(pixels), "PNG")


def test_upload_wait_search_page_and_delete(client: Client, tmp_path: Path) -> None:
    red = make_image(color="red", shape="circle")
    assert len(red) <= SMALL_LIMIT
    path = tmp_path / "blue.png"
    path.write_bytes(make_image(color="blue", shape="square"))
    big = noisy_png(64, seed=1)
    assert len(big) > SMALL_LIMIT

    first = client.upload_result(red, filename="red.png", title="red circle", tags=["shapes", "red"])
    from_path = client.upload(path, title="blue square", tags=["shapes"])
    direct = client.upload_result(big, title="noise", tags=["noise"])  # POST /uploads + PUT
    assert first.created and direct.created and from_path.filename == "blue.png"
    again, direct_again = client.upload_result(red), client.upload_result(big)  # the same bytes: no new image
    assert (again.created, again.image.id) == (False, first.image.id)
    assert (direct_again.created, direct_again.image.id) == (False, direct.image.id)

    ready = client.wait_ready([first.image, from_path.id, str(direct.image.id)], timeout=60, interval=0.1)
    assert [image.status for image in ready] == ["ready"] * 3
    assert ready[2].size == len(big) and ready[2].content_type == "image/png"

    found = client.search("red circle", mode="keyword")
    assert [r.id for r in found.results] == [first.image.id]
    assert client.search_by_image(red, limit=1).results[0].id == first.image.id
    assert first.image.id not in {r.id for r in client.similar(first.image).results}
    recommended = client.recommend([first.image], negative=[{"text": "noise"}], limit=3)
    assert len(recommended.results) >= 1

    # pages: one image per page, every image once
    all_ids = {first.image.id, from_path.id, direct.image.id}
    assert {image.id for image in client.list_images(page_size=1)} == all_ids
    assert [image.id for image in client.list_images(tag="noise", page_size=1)] == [direct.image.id]
    assert {r.id for r in client.iter_search("a shape", mode="vector", limit=1)} == all_ids

    updated = client.update_image(from_path, title="a blue square", tags=["blue"])
    assert (updated.title, updated.tags) == ("a blue square", ["blue"])
    assert client.update_image(from_path, title=None).title is None  # None clears

    client.delete_image(direct.image)
    with pytest.raises(ApiError) as error:
        client.get_image(direct.image)
    assert error.value.status == 404 and error.value.title and error.value.detail


def test_invalid_requests_raise_with_the_problem(client: Client) -> None:
    with pytest.raises(ApiError) as error:
        client.search("red", limit=1000)
    assert error.value.status == 422 and "limit" in error.value.detail.lower() + str(
        error.value.problem.errors
    )
    with pytest.raises(ApiError) as error:
        client.upload(b"not an image", filename="fake.jpg")
    assert error.value.status == 415 and error.value.problem.reason == "unsupported_format"


def test_webhooks_signed_deliveries_and_their_pages(client: Client) -> None:
    received: list[tuple[bytes, str | None]] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> dict[str, Any]:
        received.append((await request.body(), request.headers.get("imagesearch-signature")))
        return {}

    with serving(receiver) as receiver_url:
        webhook = client.create_webhook(f"{receiver_url}/hook", ["image.ready"], description="tests")
        assert webhook.secret and webhook.events == ["image.ready"]
        assert [w.id for w in client.list_webhooks()] == [webhook.id]
        assert "secret" not in (client.get_webhook(webhook.id).model_extra or {})  # shown once

        image = client.wait_ready(client.upload(make_image(color="green"), filename="green.png"), timeout=60)
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
        body, signature = received[0]
        assert verify_webhook(webhook.secret, body, signature) > 0 and str(image.id).encode() in body
        deliveries = list(client.list_deliveries(webhook.id, page_size=1))
        assert [d.event_type for d in deliveries] == ["image.ready"]

        client.delete_webhook(webhook.id)
        assert client.list_webhooks() == []


def test_async_client(stack: LocalStack, client: Client) -> None:
    async def scenario() -> None:
        async with AsyncClient(stack.base_url, multipart_limit=SMALL_LIMIT) as aclient:
            small = await aclient.upload(make_image(color="yellow"), filename="yellow.png", tags=["async"])
            large = await aclient.upload(noisy_png(64, seed=2), filename="noise.png", tags=["async"])
            ready = await aclient.wait_ready([small, large], timeout=60, interval=0.1)
            assert {image.status for image in ready} == {"ready"}
            assert (await aclient.search_by_image(make_image(color="yellow"), limit=1)).results[
                0
            ].id == small.id
            assert {image.id async for image in aclient.list_images(tag="async", page_size=1)} == {
                small.id,
                large.id,
            }
            assert {r.id async for r in aclient.iter_search("a shape", mode="vector", limit=1)} == {
                small.id,
                large.id,
            }
            with pytest.raises(ApiError) as error:
                await aclient.get_image("00000000-0000-0000-0000-000000000000")
            assert error.value.status == 404

    run_async(scenario())
