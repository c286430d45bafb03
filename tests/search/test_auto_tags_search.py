"""Labels from the model in search: the `auto_tags` filter, and keyword matches at a lower weight than the
user's own words (migration 0008: title and tags weigh A, auto tags C)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from support.gallery import AddImages
from support.images import demo_shape

from imagesearch.config import Settings


def search(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/search", json={"limit": 50, **body})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_the_auto_tags_filter_keeps_the_images_the_model_labelled_so(
    settings: Settings, client: TestClient, add_images: AddImages
) -> None:
    gallery = add_images(
        {"name": "red_circle", "data": demo_shape(color="red", shape="circle")},
        {"name": "blue_square", "data": demo_shape(color="blue", shape="square", background="white")},
        # the user says "red"; the model does not
        {"name": "tagged_red", "data": demo_shape(color="green", shape="star"), "tags": ["red"]},
    )
    ids = {str(v): k for k, v in gallery.ids.items()}

    for mode in ("vector", "hybrid"):
        found = search(client, query="a shape", mode=mode, filters={"auto_tags": ["red"]})
        assert [ids[r["id"]] for r in found] == ["red_circle"], mode
    either = search(client, query="a shape", mode="vector", filters={"auto_tags": ["red", "blue"]})
    assert {ids[r["id"]] for r in either} == {"red_circle", "blue_square"}
    # the user's tags and the model's are apart: the tags filter does not look at auto tags
    tagged = search(client, query="a shape", mode="vector", filters={"tags": ["red"]})
    assert [ids[r["id"]] for r in tagged] == ["tagged_red"]
    response = client.post("/search", json={"query": "a shape", "mode": "vector", "facets": ["auto_tags"]})
    counts = {f["value"]: f["count"] for f in response.json()["facets"]["auto_tags"]}
    assert counts["red"] == 1 and counts["blue"] == 1 and "green" in counts
    listed = client.get("/images", params={"auto_tags": "circle"})
    assert listed.status_code == 200, listed.text
    assert [ids[item["id"]] for item in listed.json()["items"]] == ["red_circle"]


def test_a_keyword_search_finds_a_label_below_the_users_own_words(
    settings: Settings, client: TestClient, add_images: AddImages
) -> None:
    gallery = add_images(
        {"name": "labelled", "data": demo_shape(color="red", shape="circle")},
        {"name": "titled", "data": demo_shape(color="yellow", shape="star"), "title": "Circle"},
        {"name": "tagged", "data": demo_shape(color="blue", shape="cross"), "tags": ["circle"]},
        {"name": "other", "data": demo_shape(color="green", shape="triangle")},
    )
    ids = {str(v): k for k, v in gallery.ids.items()}
    record = client.get(f"/images/{gallery.ids['labelled']}").json()
    assert "circle" in record["auto_tags"] and record["tags"] == [] and not record["title"]

    found = [ids[r["id"]] for r in search(client, query="circle", mode="keyword")]
    assert set(found) == {"labelled", "titled", "tagged"}
    assert found[-1] == "labelled"  # weight C, below the title's and the tag's weight A
