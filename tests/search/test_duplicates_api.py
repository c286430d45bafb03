"""GET /duplicates (near-duplicate groups, paged, per tenant), and search's collapse by those groups."""

from __future__ import annotations

import io
import uuid
from typing import Any
from uuid import UUID

import httpx
from fastapi.testclient import TestClient
from PIL import Image, ImageEnhance
from support.gallery import AddImages
from support.images import make_image

from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.client import Client
from imagesearch.db import Database
from imagesearch.demo.photos import photo_jpeg
from imagesearch.ingest.events import ObjectEvent
from imagesearch.runtime import get_runtime


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo_and_copy(seed: int) -> tuple[bytes, bytes]:
    """A photo, and a smaller, darker, recompressed copy of it."""
    data = photo_jpeg(640, 480, seed=seed)
    image = Image.open(io.BytesIO(data)).resize((320, 240))
    return data, jpeg(ImageEnhance.Brightness(image).enhance(0.93), 50)


def listed(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/duplicates", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_groups_are_listed_newest_first_with_their_members_and_paged(
    add_images: AddImages, client: TestClient
) -> None:
    pictures: list[dict[str, Any]] = []
    for seed in (1, 2, 3):
        original, copy = photo_and_copy(seed)
        pictures += [{"name": f"p{seed}", "data": original}, {"name": f"c{seed}", "data": copy}]
    pictures.append({"name": "alone", "data": photo_jpeg(640, 480, seed=4)})
    ids = add_images(*pictures).ids

    first = listed(client, limit=2)
    assert [g["group"] for g in first["items"]] == [str(ids["p3"]), str(ids["p2"])]
    assert first["next_cursor"]
    second = listed(client, limit=2, cursor=first["next_cursor"])
    assert [g["group"] for g in second["items"]] == [str(ids["p1"])] and second["next_cursor"] is None

    group = first["items"][0]
    assert group["size"] == 2
    assert [m["id"] for m in group["images"]] == [str(ids["p3"]), str(ids["c3"])]  # oldest first
    head, copy = group["images"]
    assert head["distance"] == 0 and head["similarity"] == 1.0
    assert 0 <= copy["distance"] <= 18 and copy["similarity"] is not None
    assert copy["thumbnail_url"] and copy["duplicate_group"] == str(ids["p3"]) and copy["status"] == "ready"
    assert client.get(f"/images/{ids['alone']}").json().get("duplicate_group") is None

    # the Python client pages through the same groups (the API's answers, relayed)
    def relay(request: httpx.Request) -> httpx.Response:
        answer = client.get(request.url.path, params=dict(request.url.params))
        return httpx.Response(answer.status_code, content=answer.content, headers=dict(answer.headers))

    with Client("http://api.test", transport=httpx.MockTransport(relay)) as sdk:
        groups = list(sdk.duplicates(page_size=1))
    assert [g.group for g in groups] == [ids["p3"], ids["p2"], ids["p1"]]
    assert [(m.id, m.distance) for m in groups[0].images][0] == (ids["p3"], 0)


def test_a_group_left_with_one_image_is_not_listed(add_images: AddImages, client: TestClient) -> None:
    original, copy = photo_and_copy(5)
    ids = add_images({"name": "original", "data": original}, {"name": "copy", "data": copy}).ids
    assert len(listed(client)["items"]) == 1

    assert client.delete(f"/images/{ids['original']}").status_code == 204  # the group's first image
    assert listed(client) == {"items": [], "next_cursor": None}
    # the copy still carries the group's id, and joins whatever matches it next
    again = add_images({"name": "again", "data": jpeg(Image.open(io.BytesIO(original)), 70)}).ids
    (group,) = listed(client)["items"]
    assert group["group"] == str(ids["original"])
    assert [m["id"] for m in group["images"]] == [str(ids["copy"]), str(again["again"])]


def test_another_tenants_groups_are_not_listed(
    add_images: AddImages, client: TestClient, db: Database
) -> None:
    storage = get_runtime().storage
    with db.connection() as conn:
        other = get_or_create_tenant(conn, "other").id
    events = []
    for data in photo_and_copy(6):
        image_id = uuid.uuid4()
        key = f"originals/{other}/{image_id}"
        with db.connection() as conn:
            conn.execute(
                "INSERT INTO images (id, tenant_id, storage_key) VALUES (%s, %s, %s)", (image_id, other, key)
            )
        info = storage.put(key, data, content_type="image/jpeg")
        events.append(ObjectEvent("local", key, info.size, info.etag, None, "ObjectCreated:Put"))
    get_runtime().ingestor.ingest(events)
    with db.connection() as conn:
        (groups,) = conn.execute(
            "SELECT count(DISTINCT duplicate_group) FROM images WHERE tenant_id = %s", (other,)
        ).fetchone() or (0,)
    assert groups == 1  # grouped in their tenant
    assert listed(client) == {"items": [], "next_cursor": None}


def test_collapse_treats_a_stored_group_as_duplicates(
    add_images: AddImages, client: TestClient, db: Database
) -> None:
    """Pictures the vectors tell apart, in one stored group (as pHash would put a crop): one result."""
    ids = add_images(
        {"name": "red", "title": "red", "data": make_image(color="red", shape="circle")},
        {"name": "blue", "title": "blue", "data": make_image(color="blue", shape="square")},
        {"name": "green", "title": "green", "data": make_image(color="green", shape="triangle")},
    ).ids
    body = {"query": "a red circle", "mode": "vector"}
    plain = client.post("/search", json={**body, "collapse": "duplicates"}).json()["results"]
    assert len(plain) == 3  # not similar enough to collapse by their vectors

    red: UUID = ids["red"]
    with db.connection() as conn:
        conn.execute(
            "UPDATE images SET duplicate_group = %s WHERE id = ANY(%s)", (red, [ids["red"], ids["blue"]])
        )
    collapsed = client.post("/search", json={**body, "collapse": "duplicates"}).json()["results"]
    assert len(collapsed) == 2
    kept = next(r for r in collapsed if r["id"] in (str(ids["red"]), str(ids["blue"])))
    assert kept["duplicates"] == 1
    assert len(client.post("/search", json=body).json()["results"]) == 3  # without collapse: all
