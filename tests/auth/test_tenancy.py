"""Two tenants against every endpoint: nothing of one is visible to, or changeable by, the other."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller
from support.events import s3_event
from support.exif import photo_with_exif
from support.images import encode, make_picture

from imagesearch.db import Database
from imagesearch.ingest.events import ObjectEvent
from imagesearch.runtime import get_runtime

RED = encode(make_picture(color="red", shape="circle", size=(96, 96)), "PNG")
BLUE = encode(make_picture(color="blue", shape="square", size=(96, 96)), "PNG")


def upload(client: TestClient, caller: Caller, data: bytes, **fields: Any) -> dict[str, Any]:
    response = client.post("/images", headers=caller.headers, files={"file": ("x.png", data)}, data=fields)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def embed_pending(db: Database) -> None:
    with db.connection() as conn:
        keys = [row[0] for row in conn.execute("SELECT storage_key FROM images WHERE status = 'pending'")]
    storage = get_runtime().storage
    events = [ObjectEvent("local", k, None, storage.head(k).etag, None, "ObjectCreated:Put") for k in keys]
    get_runtime().ingestor.ingest(events)


@pytest.fixture
def images(client: TestClient, alice: Caller, bob: Caller, db: Database) -> dict[str, dict[str, Any]]:
    result = {
        "alice": upload(client, alice, RED, title="Alice sunset", tags=["private"]),
        "bob": upload(client, bob, BLUE, title="Bob harbour"),
    }
    embed_pending(db)
    return result


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["id"] for item in body.get("results", body.get("items", []))]


def test_records_of_another_tenant_answer_404_and_stay_untouched(
    client: TestClient, alice: Caller, bob: Caller, images: dict[str, dict[str, Any]]
) -> None:
    theirs = images["alice"]["id"]
    assert client.get(f"/images/{theirs}", headers=bob.headers).status_code == 404
    assert client.patch(f"/images/{theirs}", headers=bob.headers, json={"title": "mine"}).status_code == 404
    assert client.delete(f"/images/{theirs}", headers=bob.headers).status_code == 404
    assert client.get(f"/images/{theirs}/similar", headers=bob.headers).status_code == 404
    assert client.post("/search", headers=bob.headers, json={"image_id": theirs}).status_code == 404
    assert ids(client.get("/images", headers=bob.headers)) == [images["bob"]["id"]]
    assert ids(client.get("/images", headers=bob.headers, params={"tag": "private"})) == []
    mine = client.get(f"/images/{theirs}", headers=alice.headers).json()
    assert mine["title"] == "Alice sunset" and mine["status"] == "ready"


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_search_never_returns_another_tenants_images(
    client: TestClient, bob: Caller, images: dict[str, dict[str, Any]], mode: str
) -> None:
    for query in ("sunset", "alice", "red circle", "harbour"):
        found = ids(client.post("/search", headers=bob.headers, json={"query": query, "mode": mode}))
        assert images["alice"]["id"] not in found
    by_picture = client.post("/search/image", headers=bob.headers, files={"file": ("q.png", RED)})
    assert ids(by_picture) == [images["bob"]["id"]]


def test_the_same_bytes_are_separate_images_in_separate_tenants(
    client: TestClient, bob: Caller, images: dict[str, dict[str, Any]]
) -> None:
    copy = upload(client, bob, RED)
    assert copy["id"] != images["alice"]["id"]


def test_upload_urls_and_object_keys_are_namespaced_by_tenant(
    client: TestClient, alice: Caller, bob: Caller, images: dict[str, dict[str, Any]], db: Database
) -> None:
    announced = client.post(
        "/uploads", headers=bob.headers, json={"filename": "b.png", "content_type": "image/png", "size": 10}
    ).json()
    with db.connection() as conn:
        rows = dict(conn.execute("SELECT t.name, t.id::text FROM tenants t").fetchall())
    assert f"/originals/{rows['bob-llc']}/" in announced["upload_url"]
    assert rows["alice-corp"] not in announced["upload_url"]
    alices = client.get(f"/images/{images['alice']['id']}", headers=alice.headers).json()
    assert rows["alice-corp"] in alices["url"] and rows["bob-llc"] not in alices["url"]
    assert rows["alice-corp"] in alices["thumbnail_url"]


def test_an_object_under_one_tenant_cannot_reach_anothers_record(
    client: TestClient, alice: Caller, bob: Caller, images: dict[str, dict[str, Any]], db: Database
) -> None:
    """The embed function trusts the tenant in the key only: bob's key naming alice's image id becomes an
    image of bob's under an id of its own (a foreign object), never alice's record."""
    with db.connection() as conn:
        bob_tenant = conn.execute("SELECT id FROM tenants WHERE name = 'bob-llc'").fetchone()[0]  # type: ignore[index]
    key = f"originals/{bob_tenant}/{images['alice']['id']}"
    info = get_runtime().storage.put(key, RED, content_type="image/png")  # alice's picture, new to bob
    handler_event = s3_event(key, size=info.size, etag=info.etag)
    from imagesearch.local.context import LocalLambdaContext
    from imagesearch.local.functions import load_function

    load_function("embed").handler(handler_event, LocalLambdaContext())

    bobs = client.get("/images", headers=bob.headers).json()["items"]
    adopted = [image for image in bobs if image["id"] != images["bob"]["id"]]
    assert len(adopted) == 1 and adopted[0]["id"] != images["alice"]["id"]
    assert adopted[0]["status"] == "ready" and adopted[0]["title"] is None
    mine = client.get(f"/images/{images['alice']['id']}", headers=alice.headers).json()
    assert (mine["title"], mine["sha256"]) == ("Alice sunset", images["alice"]["sha256"])


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_facets_and_ranking_options_count_only_the_callers_images(
    client: TestClient, bob: Caller, images: dict[str, dict[str, Any]], mode: str
) -> None:
    body = {"query": "red circle sunset private", "mode": mode, "facets": ["tags", "year", "month"]}
    for extra in ({}, {"sort": "newest", "min_score": -1.0}, {"collapse": "duplicates", "cutoff": "auto"}):
        response = client.post("/search", headers=bob.headers, json={**body, **extra})
        assert images["alice"]["id"] not in ids(response)
        facets = response.json()["facets"]
        assert "private" not in [f["value"] for f in facets["tags"]]
        assert sum(f["count"] for f in facets["year"]) == len(ids(response))


def test_recommending_from_another_tenants_image_is_404_and_never_returns_it(
    client: TestClient, bob: Caller, images: dict[str, dict[str, Any]]
) -> None:
    theirs, mine = images["alice"]["id"], images["bob"]["id"]
    for strategy in ("average", "best_score"):
        for examples in (
            {"positive": [{"image_id": theirs}]},
            {"positive": [{"image_id": mine}], "negative": [{"image_id": theirs}]},
        ):
            response = client.post("/recommend", headers=bob.headers, json={**examples, "strategy": strategy})
            assert response.status_code == 404, response.text
        found = client.post(
            "/recommend",
            headers=bob.headers,
            json={"positive": [{"text": "a red circle"}], "strategy": strategy},
        )
        assert ids(found) == [mine]


def test_a_photos_location_is_only_ever_shown_to_its_tenant(
    client: TestClient, alice: Caller, bob: Caller, db: Database
) -> None:
    theirs = upload(client, alice, photo_with_exif(make="Canon", gps=(48.8584, 2.2945)))["id"]
    embed_pending(db)
    assert client.get(f"/images/{theirs}", headers=alice.headers).json()["location"]["lat"] > 48
    assert client.get(f"/images/{theirs}", headers=bob.headers).status_code == 404
    near = {"near": {"lat": 48.8584, "lon": 2.2945, "radius_km": 1}}
    body = {"query": "photo", "mode": "vector", "filters": near}
    assert ids(client.post("/search", headers=bob.headers, json=body)) == []
    assert ids(client.post("/search", headers=alice.headers, json=body)) == [theirs]
