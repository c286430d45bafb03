"""What users ask of a result list: a cut-off that adapts, date sorts, facets, diversity, duplicate collapse,
and recommendations from examples (POST /search's ranking options and POST /recommend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.gallery import AddImages
from support.images import encode, make_image, make_picture

from imagesearch.db import Database


def post(client: TestClient, path: str, **body: Any) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def titles(result: dict[str, Any]) -> list[str]:
    return [r["title"] for r in result["results"]]


def every_page(client: TestClient, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        page = post(client, path, **body, **({"cursor": cursor} if cursor else {}))
        results += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            return results
    raise AssertionError("no end to the pages")


# Four red circles, four blue squares, three green triangles: different sizes, so different bytes; each
# picture taken a day after the one before it (created_at), tags by colour and by size.
SHAPES = [("red", "circle")] * 4 + [("blue", "square")] * 4 + [("green", "triangle")] * 3
START = datetime(2024, 12, 26, 12, tzinfo=UTC)


@pytest.fixture
def shapes(add_images: AddImages, db: Database) -> dict[str, UUID]:
    pictures: list[dict[str, Any]] = [
        {
            "name": f"{color} {shape} {i}",
            "title": f"{color} {shape} {i}",
            "color": color,
            "shape": shape,
            "size": (80 + 12 * i, 64 + 4 * i),
            "tags": [color, "big" if i % 2 else "small"],
        }
        for i, (color, shape) in enumerate(SHAPES)
    ]
    gallery = add_images(*pictures)
    with db.connection() as conn:
        for i, picture in enumerate(pictures):
            taken = START + timedelta(days=i)
            conn.execute(
                "UPDATE images SET created_at = %s WHERE id = %s", (taken, gallery.ids[picture["name"]])
            )
    return gallery.ids


def test_auto_cutoff_keeps_the_matching_pictures_and_says_where_it_cut(
    client: TestClient, shapes: dict[str, UUID]
) -> None:
    everything = post(client, "/search", query="a red circle", mode="vector", limit=100)
    assert len(everything["results"]) == len(SHAPES)  # no cut-off: every candidate, weakest last
    result = post(
        client, "/search", query="a red circle", mode="vector", cutoff="auto", explain=True, limit=100
    )
    assert sorted(titles(result)) == [f"red circle {i}" for i in range(4)]
    (cut,) = result["cutoff"]
    assert cut["branch"] == "vector" and (cut["kept"], cut["candidates"]) == (4, len(SHAPES))
    assert cut["threshold"] == pytest.approx(result["results"][-1]["score"], abs=1e-5)
    assert cut["gap"] > 3 * cut["mean_gap"] and cut["reason"].startswith("cut after 4 of 11")
    # Never below min_score: a higher threshold still wins.
    top = result["results"][0]["score"]
    assert titles(
        post(client, "/search", query="a red circle", mode="vector", cutoff="auto", min_score=top - 1e-5)
    ) == [result["results"][0]["title"]]
    # Hybrid keeps what either branch keeps: the vector branch's red circles and the keyword branch's "red".
    hybrid = post(client, "/search", query="red circle", cutoff="auto", explain=True, limit=100)
    assert set(titles(hybrid)) == {f"red circle {i}" for i in range(4)}
    assert [c["branch"] for c in hybrid["cutoff"]] == ["vector", "keyword"]
    assert post(client, "/search", query="red circle", cutoff="auto").get("cutoff") is None  # without explain


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_a_date_sort_orders_the_relevant_set_and_pages_through_it(
    client: TestClient, shapes: dict[str, UUID], db: Database, sort: str
) -> None:
    with db.connection() as conn:  # two pictures taken at the same moment: the id breaks the tie
        conn.execute(
            "UPDATE images SET created_at = %s WHERE id = %s",
            (START + timedelta(days=1), shapes["red circle 2"]),
        )
    # A date sort implies cutoff auto: the red circles only, by date, two per page.
    results = every_page(
        client, "/search", {"query": "a red circle", "mode": "vector", "sort": sort, "limit": 2}
    )
    dates = [r["created_at"] for r in results]
    assert sorted(r["title"] for r in results) == [f"red circle {i}" for i in range(4)]
    assert dates == sorted(dates, reverse=sort == "newest")
    whole = post(client, "/search", query="a red circle", mode="vector", sort=sort, limit=100)
    assert [r["id"] for r in results] == [r["id"] for r in whole["results"]]
    # With min_score drawing the line instead, the whole library above it comes by date.
    loose = every_page(
        client,
        "/search",
        {"query": "a red circle", "mode": "vector", "sort": sort, "min_score": -1, "limit": 3},
    )
    assert len(loose) == len(SHAPES) and len({r["id"] for r in loose}) == len(SHAPES)
    loose_dates = [r["created_at"] for r in loose]
    assert loose_dates == sorted(loose_dates, reverse=sort == "newest")


def test_facets_count_the_relevant_set_not_the_page(client: TestClient, shapes: dict[str, UUID]) -> None:
    result = post(
        client, "/search", query="a blue square", mode="vector", cutoff="auto", limit=1,
        facets=["tags", "year", "month"],
    )  # fmt: skip
    assert len(result["results"]) == 1 and result["next_cursor"]
    facets = result["facets"]
    assert facets["tags"] == [
        {"value": "blue", "count": 4},
        {"value": "big", "count": 2},
        {"value": "small", "count": 2},
    ]
    # The blue squares were taken on 30 and 31 December 2024 and 1 and 2 January 2025.
    assert facets["year"] == [{"value": "2024", "count": 2}, {"value": "2025", "count": 2}]
    assert facets["month"] == [{"value": "2024-12", "count": 2}, {"value": "2025-01", "count": 2}]
    # Filters narrow what is counted; a page past the end still carries the facets.
    narrowed = post(
        client,
        "/search",
        query="a blue square",
        mode="vector",
        facets=["tags"],
        filters={"tags": ["big"]},
        offset=50,
    )
    assert narrowed["results"] == []
    assert narrowed["facets"]["tags"] == [
        {"value": "big", "count": 5},
        {"value": "blue", "count": 2},
        {"value": "red", "count": 2},
        {"value": "green", "count": 1},
    ]
    assert post(client, "/search", query="a blue square").get("facets") is None


def test_diversity_brings_other_pictures_up_and_pages_stay_complete(
    client: TestClient, shapes: dict[str, UUID]
) -> None:
    plain = post(client, "/search", query="a red circle", mode="vector", limit=3)
    assert all(t.startswith("red circle") for t in titles(plain))
    diverse = post(client, "/search", query="a red circle", mode="vector", limit=3, diversity=0.7)
    assert titles(diverse)[0] == titles(plain)[0]  # the best result stays first
    assert len({t.rsplit(" ", 1)[0] for t in titles(diverse)}) == 3  # then the other kinds of picture
    pages = every_page(
        client, "/search", {"query": "a red circle", "mode": "vector", "limit": 4, "diversity": 0.7}
    )
    assert sorted(r["id"] for r in pages) == sorted(str(i) for i in shapes.values())


def test_collapse_shows_one_picture_per_group_of_near_duplicates(
    add_images: AddImages, client: TestClient
) -> None:
    picture = make_picture(color="yellow", shape="circle", size=(160, 120), background="white")
    twice = picture.resize((320, 240), Image.Resampling.BICUBIC)
    other = make_image(color="blue", shape="square", background="black")
    recompressed = encode(picture, "JPEG", quality=60)
    add_images(
        {"name": "original", "title": "original", "data": encode(picture, "PNG")},
        {"name": "recompressed", "title": "recompressed", "data": recompressed, "filename": "a.jpg"},
        {"name": "resized", "title": "resized", "data": encode(twice, "PNG")},
        {"name": "other", "title": "other", "data": other},
    )
    result = post(client, "/search", query="a yellow circle", mode="vector", collapse="duplicates")
    assert [
        (r["title"] in ("original", "recompressed", "resized"), r["duplicates"]) for r in result["results"]
    ] == [
        (True, 2),
        (False, 0),
    ]
    assert all(
        r.get("duplicates") is None for r in post(client, "/search", query="a yellow circle")["results"]
    )


@pytest.mark.parametrize("strategy", ["average", "best_score"])
def test_recommend_more_like_these_less_like_those(
    client: TestClient, shapes: dict[str, UUID], strategy: str
) -> None:
    positive = [{"image_id": str(shapes["red circle 0"])}]
    result = post(client, "/recommend", positive=positive, strategy=strategy, limit=3)
    assert (
        titles(result) == [t for t in titles(result) if t.startswith("red circle")]
        and len(titles(result)) == 3
    )
    assert "red circle 0" not in titles(result)  # the examples themselves are left out
    # A text example and a negative one: blue things, but not the squares.
    mixed = post(
        client, "/recommend", strategy=strategy, limit=3, cutoff="auto",
        positive=[{"text": "blue"}], negative=[{"image_id": str(shapes["blue square 4"]), "weight": 0.5}],
    )  # fmt: skip
    assert "blue square 4" not in titles(mixed)
    pages = every_page(client, "/recommend", {"positive": positive, "strategy": strategy, "limit": 4})
    assert len({r["id"] for r in pages}) == len(pages) == len(SHAPES) - 1


def test_recommend_with_uploaded_pictures_stores_nothing(
    client: TestClient, shapes: dict[str, UUID], db: Database
) -> None:
    with db.connection() as conn:
        before = conn.execute("SELECT count(*) FROM images").fetchone()
    picture = make_image(color="green", shape="triangle", size=(100, 90))
    response = client.post(
        "/recommend/images",
        files=[("positive", ("q.png", picture, "image/png"))],
        data={"request": '{"negative": [{"text": "red"}], "limit": 3}'},
    )
    assert response.status_code == 200, response.text
    assert all(t.startswith("green triangle") for t in titles(response.json()))
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == before
    # Only negatives: nothing to find more of.
    negatives_only = client.post("/recommend/images", files=[("negative", ("q.png", picture, "image/png"))])
    assert (
        negatives_only.status_code == 422
        and negatives_only.headers["content-type"] == "application/problem+json"
    )


ONE = {"image_id": "00000000-0000-0000-0000-000000000000"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/search", {"query": "x", "sort": "random"}),
        ("/search", {"query": "x", "facets": ["colour"]}),
        ("/search", {"query": "x", "diversity": 1.5}),
        ("/search", {"query": "x", "diversity": -0.1}),
        ("/search", {"query": "x", "diversity": 0.5, "sort": "newest"}),
        ("/search", {"query": "x", "cutoff": "sometimes"}),
        ("/search", {"query": "x", "collapse": "everything"}),
        ("/recommend", {"positive": []}),
        ("/recommend", {"negative": [{"text": "x"}]}),
        ("/recommend", {"positive": [ONE] * 21}),
        ("/recommend", {"positive": [ONE] * 11, "negative": [ONE] * 10}),
        ("/recommend", {"positive": [{"text": "x" * 100_000}]}),
        ("/recommend", {"positive": [{"text": "x", "image_id": ONE["image_id"]}]}),
        ("/recommend", {"positive": [{}]}),
        ("/recommend", {"positive": [{"text": "x", "weight": 0}]}),
        ("/recommend", {"positive": [{"text": "x"}], "strategy": "vibes"}),
        ("/recommend", {"positive": [{"text": "\u202e\u0000"}]}),
        ("/recommend", {"positive": [{"text": "x"}], "cursor": "nonsense"}),
    ],
)
def test_bad_ranking_options_are_422_problems(client: TestClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_recommend_examples_that_are_unknown_or_not_embedded(
    client: TestClient, shapes: dict[str, UUID], db: Database
) -> None:
    assert client.post("/recommend", json={"positive": [ONE]}).status_code == 404
    with db.connection() as conn:
        conn.execute("DELETE FROM embeddings WHERE image_id = %s", (shapes["green triangle 8"],))
    response = client.post("/recommend", json={"positive": [{"image_id": str(shapes["green triangle 8"])}]})
    assert response.status_code == 409, response.text


def test_similar_images_and_search_by_picture_take_the_cutoff(
    client: TestClient, shapes: dict[str, UUID]
) -> None:
    example = shapes["blue square 4"]
    everything = client.get(f"/images/{example}/similar", params={"limit": 100}).json()["results"]
    assert len(everything) == len(SHAPES) - 1
    similar = client.get(f"/images/{example}/similar", params={"limit": 100, "cutoff": "auto"})
    assert sorted(r["title"] for r in similar.json()["results"]) == [f"blue square {i}" for i in (5, 6, 7)]
    picture = make_image(color="blue", shape="square", size=(120, 80))
    by_picture = client.post(
        "/search/image", files={"file": ("q.png", picture)}, data={"limit": "100", "cutoff": "auto"}
    )
    assert sorted(r["title"] for r in by_picture.json()["results"]) == [
        f"blue square {i}" for i in range(4, 8)
    ]
    bad = client.get(f"/images/{example}/similar", params={"cutoff": "often"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
