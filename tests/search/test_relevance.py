"""With the demo model, each kind of query returns what it should: visual, keyword-only, and both."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.gallery import AddImages
from support.images import encode

from imagesearch.demo.shapes import generate

PLACES = ["Lisbon", "Osaka", "Quito"]


@pytest.fixture
def gallery(add_images: AddImages) -> dict[str, tuple[str, str, str]]:
    """36 generated pictures, titled only with a place (no words about what they show)."""
    pictures: list[dict[str, Any]] = []
    truth: dict[str, tuple[str, str, str]] = {}
    for i, sample in enumerate(generate(36, seed=77, size=128)):
        name = f"img{i}"
        place = PLACES[i % 3]
        truth[name] = (sample.scene.main.color, sample.scene.main.shape, place)
        pictures.append({"name": name, "data": encode(sample.image, "PNG"), "title": f"{place}, 2019"})
    ids = add_images(*pictures).ids
    return {str(ids[name]): label for name, label in truth.items()}


def top(client: TestClient, query: str, n: int = 3) -> list[str]:
    response = client.post("/search", json={"query": query, "limit": n})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_a_visual_query_finds_the_pictures_that_show_it(client: TestClient, gallery: dict[str, Any]) -> None:
    color, shape, _ = next(iter(gallery.values()))
    wanted = {i for i, label in gallery.items() if label[:2] == (color, shape)}
    assert (
        top(client, f"a {color} {shape}", n=len(wanted))
        and set(top(client, f"a {color} {shape}", 1)) <= wanted
    )


def test_a_keyword_only_query_finds_the_titles(client: TestClient, gallery: dict[str, Any]) -> None:
    osaka = {i for i, label in gallery.items() if label[2] == "Osaka"}
    assert set(top(client, "Osaka", n=10)) <= osaka


def test_a_query_needing_both_finds_the_picture_from_that_place(
    client: TestClient, gallery: dict[str, tuple[str, str, str]]
) -> None:
    # A colour and shape seen in more than one place, so only the place words decide.
    by_label: dict[tuple[str, str], set[str]] = {}
    for label in gallery.values():
        by_label.setdefault(label[:2], set()).add(label[2])
    (color, shape), places = next((k, v) for k, v in by_label.items() if len(v) > 1)
    place = sorted(places)[0]
    wanted = {i for i, label in gallery.items() if label == (color, shape, place)}
    assert top(client, f"a {color} {shape} in {place}", n=1)[0] in wanted
