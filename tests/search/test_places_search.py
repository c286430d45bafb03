"""Places in search: words of the keyword branch (weight B), the `place` facet and the `place` filter, on
photos nobody titled."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.exif import photo_with_exif
from support.gallery import AddImages

LISBON_HARBOUR = (38.7057, -9.1449)
ROSSIO = (38.7139, -9.1394)  # Lisbon too
CASCAIS = (38.6979, -9.4215)  # in the Lisbon region, its own town
SYDNEY_OPERA_HOUSE = (-33.8568, 151.2153)
SAO_PAULO = (-23.5505, -46.6333)
OFF_FIJI = (-16.8, 179.99)  # 78 km from the nearest town: the country only

# Untitled, named as cameras name files: only their places say where they are.
PHOTOS: list[dict[str, Any]] = [
    {"name": "lisbon", "color": "red", "shape": "circle", "gps": LISBON_HARBOUR},
    {"name": "sydney", "color": "red", "shape": "circle", "gps": SYDNEY_OPERA_HOUSE},  # the same picture
    {"name": "rossio", "color": "blue", "shape": "square", "gps": ROSSIO},
    {"name": "cascais", "color": "green", "shape": "triangle", "gps": CASCAIS},
    {"name": "fiji", "color": "yellow", "shape": "circle", "gps": OFF_FIJI},
    {"name": "nowhere", "color": "white", "shape": "square"},
]


@pytest.fixture
def photos(add_images: AddImages) -> dict[str, str]:
    pictures = []
    for n, photo in enumerate(PHOTOS):
        spec = dict(photo)
        name = spec.pop("name")
        pictures.append({"name": name, "data": photo_with_exif(**spec), "filename": f"IMG_{n:04}.JPG"})
    return {name: str(image_id) for name, image_id in add_images(*pictures).ids.items()}


def search(client: TestClient, query: str, **body: Any) -> dict[str, Any]:
    response = client.post("/search", json={"query": query, "limit": 100, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(result: dict[str, Any]) -> list[str]:
    return [r["id"] for r in result["results"]]


def named(photos: dict[str, str], *names: str) -> set[str]:
    return {photos[name] for name in names}


def test_harbour_lisbon_puts_the_untitled_lisbon_photos_first(
    client: TestClient, photos: dict[str, str]
) -> None:
    """The Lisbon and Sydney photos are the same picture: only the place tells them apart."""
    found = ids(search(client, "harbour Lisbon", mode="hybrid"))
    assert set(found[:3]) == named(photos, "lisbon", "rossio", "cascais")  # the photos taken in Lisbon
    assert found.index(photos["lisbon"]) < found.index(photos["sydney"])


def test_place_words_are_keywords(client: TestClient, photos: dict[str, str]) -> None:
    # The region is a word too: Cascais is in the Lisbon region.
    assert set(ids(search(client, "Lisbon", mode="keyword"))) == named(photos, "lisbon", "rossio", "cascais")
    assert set(ids(search(client, "portugal", mode="keyword"))) == named(
        photos, "lisbon", "rossio", "cascais"
    )
    assert set(ids(search(client, "New South Wales", mode="keyword"))) == named(photos, "sydney")
    assert set(ids(search(client, "Fiji", mode="keyword"))) == named(photos, "fiji")


def test_the_place_facet_counts_towns_and_countries_alone(client: TestClient, photos: dict[str, str]) -> None:
    result = search(client, "picture", mode="vector", facets=["place"])
    assert result["facets"]["place"] == [
        {"value": "Lisbon, Portugal", "count": 2},
        {"value": "Cascais, Portugal", "count": 1},
        {"value": "Fiji", "count": 1},
        {"value": "Sydney, Australia", "count": 1},
    ]  # the photo with no location is in none


def found(client: TestClient, place: str) -> set[str]:
    return set(ids(search(client, "picture", mode="vector", filters={"place": place})))


def test_filtering_by_a_facet_value_finds_what_it_counted(client: TestClient, photos: dict[str, str]) -> None:
    facet = search(client, "picture", mode="vector", facets=["place"])["facets"]["place"]
    for value in facet:
        assert len(found(client, value["value"])) == value["count"], value


@pytest.mark.parametrize(
    ("place", "names"),
    [
        ("Lisbon", {"lisbon", "rossio", "cascais"}),  # the city, and the region of that name
        ("lisbon, portugal", {"lisbon", "rossio"}),  # the city, ignoring case
        ("Lisbon,PT", {"lisbon", "rossio"}),  # or its country code
        ("  Cascais ,  Lisbon ", {"cascais"}),  # city, region
        ("Cascais, Lisbon, Portugal", {"cascais"}),
        ("pt", {"lisbon", "rossio", "cascais"}),
        ("Portugal", {"lisbon", "rossio", "cascais"}),
        ("New South Wales", {"sydney"}),
        ("Fiji", {"fiji"}),
        ("Lisbon, Australia", set()),
        ("Lisbo", set()),  # names, not parts of them
        ("Cascais, Portugal, Lisbon", set()),  # city, region, country: in that order
    ],
)
def test_the_place_filter_matches_names_ignoring_case(
    client: TestClient, photos: dict[str, str], place: str, names: set[str]
) -> None:
    assert found(client, place) == named(photos, *names)


def test_the_place_filter_ignores_accents(client: TestClient, add_images: AddImages) -> None:
    photo = photo_with_exif(color="red", shape="circle", gps=SAO_PAULO)
    image_id = str(add_images({"name": "sp", "data": photo, "filename": "IMG_0100.JPG"}).ids["sp"])
    for place in (
        "Sao Paulo",
        "SÃO PAULO",
        "sao paulo, brazil",
        "Sao Paulo, BR",
        "Sao Paulo, Sao Paulo, Brazil",
    ):
        assert found(client, place) == {image_id}, place
    assert found(client, "Sao Paulo, Portugal") == set()


def test_the_image_list_takes_the_place_filter(client: TestClient, photos: dict[str, str]) -> None:
    response = client.get("/images", params={"place": "Lisbon, Portugal"})
    assert response.status_code == 200, response.text
    assert {image["id"] for image in response.json()["items"]} == named(photos, "lisbon", "rossio")


@pytest.mark.parametrize("place", ["", " ", ",", "Lisbon,", "a, b, c, d", "x" * 301, "Lisbon\x00"])
def test_bad_place_filters_are_422_problems(client: TestClient, place: str) -> None:
    response = client.post("/search", json={"query": "x", "filters": {"place": place}})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
