"""GET /images takes POST /search's filters as query parameters, and sorts by the date taken."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from support.exif import photo_with_exif
from support.gallery import AddImages

from imagesearch import cursors
from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.client import Client
from imagesearch.client.bodies import BoundingBox, Near
from imagesearch.config import DEFAULT_TENANT_ID
from imagesearch.db import Database
from imagesearch.exif import ExifData
from imagesearch.images import repository
from imagesearch.images.object_keys import original_key
from imagesearch.search.filter_query import OBJECT_FIELDS
from imagesearch.search.schemas import SearchFilters

PARIS = (48.8584, 2.2945)
VERSAILLES = (48.8049, 2.1204)  # 14 km from the Eiffel Tower
FIJI_EAST = (-16.5, 179.9)
FIJI_WEST = (-16.5, -179.9)

PHOTOS: list[dict[str, Any]] = [
    {"name": "paris", "taken": "2024:07:14 10:30:00", "make": "Canon", "model": "Canon EOS R5", "gps": PARIS},
    {"name": "versailles", "taken": "2024:07:15 09:00:00", "make": "Apple", "model": "iPhone 15 Pro",
     "gps": VERSAILLES},
    {"name": "fiji_east", "make": "NIKON CORPORATION", "gps": FIJI_EAST},
    {"name": "fiji_west", "taken": "2022:01:01 00:00:00", "gps": FIJI_WEST},
    {"name": "plain"},
]  # fmt: skip


@pytest.fixture
def photos(add_images: AddImages) -> dict[str, str]:
    colors = ["red", "green", "blue", "yellow", "white"]
    pictures = []
    for photo, color in zip(PHOTOS, colors, strict=True):
        spec = dict(photo)
        name = spec.pop("name")
        data = photo_with_exif(fmt="JPEG", color=color, shape="circle", **spec)
        pictures.append({"name": name, "data": data, "filename": f"{name}.jpg", "title": name})
    return {name: str(image_id) for name, image_id in add_images(*pictures).ids.items()}


def listed(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/images", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def searched(client: TestClient, filters: dict[str, Any]) -> set[str]:
    body = {"query": "photo", "mode": "vector", "limit": 100, "filters": filters}
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return {result["id"] for result in response.json()["results"]}


def named(photos: dict[str, str], *names: str) -> set[str]:
    return {photos[name] for name in names}


def as_query(filters: dict[str, Any]) -> dict[str, Any]:
    """POST /search's filters as GET /images' query: an object as its values in field order."""
    return {
        name: ",".join(str(value[field]) for field in OBJECT_FIELDS[name].model_fields)
        if name in OBJECT_FIELDS
        else value
        for name, value in filters.items()
    }


ACROSS_180 = {"min_lat": -20, "min_lon": 179, "max_lat": -10, "max_lon": -179}
# (filters as POST /search takes them, the photos they find)
CASES: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"taken_after": "2024-07-14", "taken_before": "2024-07-15"}, ("paris",)),
    ({"taken_after": "2024-07-14T10:30:00"}, ("paris", "versailles")),
    ({"taken_before": "2024-01-01"}, ("fiji_west",)),
    ({"camera": "canon"}, ("paris",)),
    ({"camera": "APPLE iphone"}, ("versailles",)),
    ({"camera": "%"}, ()),
    ({"near": {"lat": PARIS[0], "lon": PARIS[1], "radius_km": 12}}, ("paris",)),
    ({"near": {"lat": PARIS[0], "lon": PARIS[1], "radius_km": 16}}, ("paris", "versailles")),
    ({"near": {"lat": -16.5, "lon": 180.0, "radius_km": 50}}, ("fiji_east", "fiji_west")),
    ({"bbox": {"min_lat": 48.0, "min_lon": 1.5, "max_lat": 49.5, "max_lon": 3.5}}, ("paris", "versailles")),
    ({"bbox": ACROSS_180}, ("fiji_east", "fiji_west")),
    ({"bbox": ACROSS_180, "taken_after": "2021-01-01"}, ("fiji_west",)),
    ({"tags": ["nothing-has-this"]}, ()),
    # Filters added to SearchFilters after GET /images took them: parameters with no code of their own.
    ({"auto_tags": ["nothing-has-this"]}, ()),
    ({"place": "Lisbon, Portugal"}, ()),
    ({"created_after": "2000-01-01T00:00:00Z"}, ("paris", "versailles", "fiji_east", "fiji_west", "plain")),
]  # fmt: skip


def test_each_filter_finds_on_get_images_what_it_finds_on_post_search(
    client: TestClient, photos: dict[str, str]
) -> None:
    for filters, expected in CASES:
        found = listed(client, **as_query(filters))
        assert set(found) == named(photos, *expected), filters
        assert set(found) == searched(client, filters), filters  # declared once, the same answer
        assert len(found) == len(set(found))


def test_every_search_filter_is_a_query_parameter_of_get_images(client: TestClient) -> None:
    """A filter added to SearchFilters is a parameter of GET /images with no code (search/filter_query.py)."""
    parameters = {
        p["name"] for p in client.get("/openapi.json").json()["paths"]["/images"]["get"]["parameters"]
    }
    assert set(SearchFilters.model_fields) <= parameters
    assert {"sort", "status", "tag", "limit", "cursor", "sha256"} <= parameters


def test_filters_combine_with_the_older_parameters(client: TestClient, photos: dict[str, str]) -> None:
    assert set(listed(client, status="ready", camera="canon")) == named(photos, "paris")
    assert listed(client, status="pending", camera="canon") == []


@pytest.mark.parametrize(
    "params",
    [
        {"taken_after": "2024-07-14T00:00:00Z"},  # a wall-clock time has no zone
        {"taken_after": "2024-08-01", "taken_before": "2024-07-01"},
        {"taken_after": "last summer"},
        {"taken_after": "２０２４-07-14"},  # fullwidth digits
        {"camera": ""},
        {"camera": "   "},
        {"camera": "x" * 129},
        {"camera": "canon\x00"},
        {"near": "91,0,1"},
        {"near": "0,181,1"},
        {"near": "0,0,0"},
        {"near": "0,0,30000"},
        {"near": "0,0"},
        {"near": "0,0,5,mi"},
        {"near": "0,0,5km"},
        {"near": "nan,0,1"},
        {"near": "0,inf,1"},
        {"near": "1_0,0,1"},
        {"near": "٤٨,2,5"},  # Arabic-Indic digits: float() would take them
        {"near": "４８,2,5"},  # fullwidth digits
        {"near": "48\u00a0,2,5"},  # a no-break space
        {"near": "4" * 300},
        {"near": ""},
        {"bbox": "10,0,5,1"},  # min_lat above max_lat
        {"bbox": "-91,0,5,1"},
        {"bbox": "0,0,5"},
        {"bbox": '{"min_lat": 0}'},
        {"tags_mode": "some"},
        {"sort": "taken"},
    ],
)
def test_bad_filters_are_422_problems(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/images", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["detail"]


def test_a_bad_near_says_what_to_give(client: TestClient) -> None:
    problem = client.get("/images", params={"near": "38.72,-9.14"}).json()
    assert problem["errors"] == [
        {
            "field": "query.near",
            "message": "Value error, give lat,lon,radius_km: 3 numbers separated by commas",
        }
    ]
    problem = client.get("/images", params={"near": "38.72,-191,25"}).json()
    assert "lon" in problem["detail"] and "-180" in problem["detail"]


def test_numbers_may_have_spaces_signs_and_exponents(client: TestClient, photos: dict[str, str]) -> None:
    assert set(listed(client, near=" 48.8584, +2.2945 , 1.2e1 ")) == named(photos, "paris")


# --- sorting by the date taken ------------------------------------------------------------------------------


def add_records(db: Database, tenant_id: UUID, taken: list[datetime | None]) -> list[UUID]:
    """Ready records with these dates taken (no bytes: the listing reads records only)."""
    ids = []
    with db.connection() as conn:
        for when in taken:
            image_id = uuid4()
            sha256 = hashlib.sha256(image_id.bytes).hexdigest()
            new = repository.NewImage(
                id=image_id,
                tenant_id=tenant_id,
                storage_key=original_key(tenant_id, image_id),
                filename="x.jpg",
                title=None,
                description=None,
                tags=[],
                content_type="image/jpeg",
                size=1,
                sha256=sha256,
            )
            assert repository.insert(conn, new) is not None
            repository.mark_ready(
                conn,
                image_id,
                content_type="image/jpeg",
                size=1,
                width=1,
                height=1,
                sha256=sha256,
                object_etag=None,
                sequencer=None,
                exif=ExifData(taken_at_local=when, camera_make="Canon" if when else None),
            )
            ids.append(image_id)
    return ids


def pages(client: TestClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        response = client.get(
            "/images", params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging never ended")


START = datetime(2024, 7, 14, 10, 30)
# Dated, with ties (the id breaks them), and undated ones in between.
TAKEN: list[datetime | None] = [
    START,
    None,
    START + timedelta(days=1),
    START,
    None,
    START - timedelta(days=400),
    START + timedelta(microseconds=1),
    None,
    START,
    START + timedelta(days=1),
    None,
]


def expected_order(records: Mapping[UUID, datetime | None], *, newest: bool) -> list[str]:
    dated = sorted((k for k in records if records[k]), key=lambda k: (records[k], k), reverse=newest)
    undated = sorted((k for k in records if not records[k]), reverse=newest)
    return [str(k) for k in [*dated, *undated]]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 100])
@pytest.mark.parametrize("sort", ["taken_newest", "taken_oldest"])
def test_paging_by_date_taken_gives_every_image_once_and_undated_ones_last(
    client: TestClient, db: Database, sort: str, limit: int
) -> None:
    ids = add_records(db, UUID(DEFAULT_TENANT_ID), TAKEN)
    records = dict(zip(ids, TAKEN, strict=True))
    items = pages(client, limit, sort=sort)
    assert [item["id"] for item in items] == expected_order(records, newest=sort == "taken_newest")
    undated = [item for item in items if item["taken_at"] is None]
    assert items[-len(undated) :] == undated


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_paging_by_upload_time_is_unchanged(client: TestClient, db: Database, sort: str) -> None:
    ids = add_records(db, UUID(DEFAULT_TENANT_ID), TAKEN)
    with db.connection() as conn:  # ties on created_at, too
        conn.execute("UPDATE images SET created_at = '2026-01-01T00:00:00Z' WHERE id = ANY(%s)", (ids[:5],))
        created = dict(conn.execute("SELECT id, created_at FROM images").fetchall())
    expected = [str(k) for k in sorted(created, key=lambda k: (created[k], k), reverse=sort == "newest")]
    assert [item["id"] for item in pages(client, 2, sort=sort)] == expected
    assert [item["id"] for item in pages(client, 3)] == [
        str(k) for k in sorted(created, key=lambda k: (created[k], k), reverse=True)
    ]  # newest is the default


def test_paging_with_a_filter_and_a_date_sort(client: TestClient, db: Database) -> None:
    ids = add_records(db, UUID(DEFAULT_TENANT_ID), TAKEN)
    recent = {k: v for k, v in zip(ids, TAKEN, strict=True) if v and v >= datetime(2024, 1, 1)}
    items = pages(client, 2, sort="taken_oldest", camera="canon", taken_after="2024-01-01")
    assert [item["id"] for item in items] == expected_order(recent, newest=False)


def test_a_cursor_belongs_to_its_sort(client: TestClient, db: Database) -> None:
    add_records(db, UUID(DEFAULT_TENANT_ID), TAKEN)
    cursor = client.get("/images", params={"limit": 2, "sort": "taken_newest"}).json()["next_cursor"]
    response = client.get("/images", params={"limit": 2, "sort": "newest", "cursor": cursor})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "taken_newest" in response.json()["detail"]


def test_a_cursor_from_before_sorts_still_pages_newest_first(client: TestClient, db: Database) -> None:
    ids = add_records(db, UUID(DEFAULT_TENANT_ID), TAKEN[:4])
    with db.connection() as conn:
        created = dict(conn.execute("SELECT id, created_at FROM images").fetchall())
    order = sorted(ids, key=lambda k: (created[k], k), reverse=True)
    old = cursors.encode_cursor([created[order[1]].isoformat(), str(order[1])])
    assert listed(client, cursor=old) == [str(k) for k in order[2:]]


# --- tenants ------------------------------------------------------------------------------------------------


def test_filters_and_sorts_never_reach_another_tenant(
    client: TestClient, db: Database, photos: dict[str, str]
) -> None:
    with db.connection() as conn:
        other = get_or_create_tenant(conn, "other-corp")
    theirs = {str(k) for k in add_records(db, other.id, TAKEN)}
    for params in (
        {"camera": "canon"},
        {"taken_after": "2000-01-01"},
        {"sort": "taken_newest"},
        {"sort": "taken_oldest", "camera": "canon"},
        {"near": f"{PARIS[0]},{PARIS[1]},20000"},
    ):
        mine = {item["id"] for item in pages(client, 2, **params)}
        assert mine and not mine & theirs, params
    assert {item["id"] for item in pages(client, 3, sort="taken_newest")} == set(photos.values())


@pytest.mark.parametrize("sort", ["taken_newest", "taken_oldest"])
def test_search_sorts_by_date_taken_too_undated_last(
    client: TestClient, photos: dict[str, str], sort: str
) -> None:
    body = {"query": "photo", "mode": "vector", "limit": 2, "cutoff": "none", "sort": sort}
    found: list[str] = []
    for _ in range(10):
        response = client.post("/search", json=body)
        assert response.status_code == 200, response.text
        found += [result["id"] for result in response.json()["results"]]
        body["cursor"] = response.json()["next_cursor"]
        if body["cursor"] is None:
            break
    dated = ["fiji_west", "paris", "versailles"]
    if sort == "taken_newest":
        dated.reverse()
    undated = sorted(named(photos, "fiji_east", "plain"))  # ties: by id
    assert found == [photos[name] for name in dated] + undated


# --- the SDK ------------------------------------------------------------------------------------------------


def test_the_client_lists_with_filters_and_a_sort(client: TestClient, photos: dict[str, str]) -> None:
    def through_the_app(request: httpx.Request) -> httpx.Response:
        answer = client.request(request.method, str(request.url), content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with Client("http://api.test", transport=httpx.MockTransport(through_the_app)) as sdk:
        near_paris = Near(lat=PARIS[0], lon=PARIS[1], radius_km=16)
        found = [
            str(image.id) for image in sdk.list_images(near=near_paris, sort="taken_oldest", page_size=1)
        ]
        assert found == [photos["paris"], photos["versailles"]]
        box = BoundingBox(min_lat=-20.0, min_lon=179.0, max_lat=-10.0, max_lon=-179.0)
        assert {str(image.id) for image in sdk.list_images(bbox=box)} == named(
            photos, "fiji_east", "fiji_west"
        )
        taken = [str(i.id) for i in sdk.list_images(taken_after=datetime(2024, 1, 1), sort="taken_newest")]
        assert taken == [photos["versailles"], photos["paris"]]
        assert [str(i.id) for i in sdk.list_images(camera="nikon", tags=["x"], tags_mode="any")] == []
