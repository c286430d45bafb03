"""EXIF end to end: uploaded through POST /images, ingested, shown on the record, filtered by POST /search."""

from __future__ import annotations

import io
import logging
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from support.exif import photo_with_exif, photo_with_exif_bytes
from support.gallery import AddImages

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.images.object_keys import thumbnail_key
from imagesearch.runtime import configure, get_runtime

PARIS = (48.8584, 2.2945)  # the Eiffel Tower
VERSAILLES = (48.8049, 2.1204)  # 14 km from it
NEW_YORK = (40.6892, -74.0445)
FIJI_EAST = (-16.5, 179.9)  # either side of the 180th meridian
FIJI_WEST = (-16.5, -179.9)

PHOTOS: list[dict[str, Any]] = [
    {
        "name": "paris",
        "fmt": "JPEG",
        "color": "red",
        "taken": "2024:07:14 10:30:00",
        "offset": "+02:00",
        "make": "Canon",
        "model": "Canon EOS R5",
        "lens": "RF50mm F1.8 STM",
        "gps": PARIS,
    },
    {
        "name": "versailles",
        "fmt": "PNG",
        "color": "green",
        "taken": "2024:07:15 09:00:00",
        "make": "Apple",
        "model": "iPhone 15 Pro",
        "gps": VERSAILLES,
    },
    {"name": "new_york", "fmt": "WEBP", "color": "blue", "taken": "2023:12:31 23:59:59", "gps": NEW_YORK},
    {"name": "fiji_east", "fmt": "TIFF", "color": "yellow", "make": "NIKON CORPORATION", "gps": FIJI_EAST},
    {"name": "fiji_west", "fmt": "HEIF", "color": "white", "taken": "2022:01:01 00:00:00", "gps": FIJI_WEST},
    {"name": "plain", "fmt": "AVIF", "color": "black"},
]


def _upload(add_images: AddImages, photos: list[dict[str, Any]]) -> dict[str, str]:
    pictures = []
    for photo in photos:
        spec = dict(photo)
        name, fmt, color = spec.pop("name"), spec.pop("fmt"), spec.pop("color")
        data = photo_with_exif(fmt=fmt, color=color, shape="circle", **spec)
        pictures.append({"name": name, "data": data, "filename": f"{name}.{fmt.lower()}", "title": name})
    return {name: str(image_id) for name, image_id in add_images(*pictures).ids.items()}


@pytest.fixture
def photos(add_images: AddImages) -> dict[str, str]:
    return _upload(add_images, PHOTOS)


def found(client: TestClient, **filters: Any) -> set[str]:
    response = client.post(
        "/search", json={"query": "photo", "mode": "vector", "limit": 100, "filters": filters}
    )
    assert response.status_code == 200, response.text
    return {result["id"] for result in response.json()["results"]}


def named(photos: dict[str, str], *names: str) -> set[str]:
    return {photos[name] for name in names}


def test_the_record_shows_what_the_exif_says(client: TestClient, photos: dict[str, str]) -> None:
    paris = client.get(f"/images/{photos['paris']}").json()
    assert paris["status"] == "ready"
    assert paris["taken_at"] == "2024-07-14T10:30:00+02:00"  # the camera's own offset
    assert paris["camera"] == "Canon EOS R5"  # the make once
    assert paris["lens"] == "RF50mm F1.8 STM"
    assert paris["location"] == {
        "lat": pytest.approx(PARIS[0], abs=1e-5),
        "lon": pytest.approx(PARIS[1], abs=1e-5),
    }

    versailles = client.get(f"/images/{photos['versailles']}").json()
    assert versailles["taken_at"] == "2024-07-15T09:00:00"  # no offset recorded: wall-clock, none guessed
    assert versailles["camera"] == "Apple iPhone 15 Pro"

    plain = client.get(f"/images/{photos['plain']}").json()
    assert plain["status"] == "ready"
    assert (plain["taken_at"], plain["camera"], plain["lens"], plain["location"]) == (None, None, None, None)
    assert plain["created_at"]  # the upload time is not a date taken


def test_taken_range_is_wall_clock(client: TestClient, photos: dict[str, str]) -> None:
    assert found(client, taken_after="2024-07-14", taken_before="2024-07-15") == named(photos, "paris")
    assert found(client, taken_after="2024-07-14T10:30:00") == named(photos, "paris", "versailles")
    assert found(client, taken_before="2024-01-01") == named(photos, "new_york", "fiji_west")
    # Images without a date taken never match a date filter.
    assert photos["plain"] not in found(client, taken_before="2100-01-01")


def test_camera_matches_make_or_model_ignoring_case(client: TestClient, photos: dict[str, str]) -> None:
    assert found(client, camera="canon") == named(photos, "paris")
    assert found(client, camera="IPHONE 15") == named(photos, "versailles")
    assert found(client, camera="apple iphone") == named(photos, "versailles")
    assert found(client, camera="nikon") == named(photos, "fiji_east")
    assert found(client, camera="%") == set()  # no wildcards


def test_near_is_a_great_circle_radius(client: TestClient, photos: dict[str, str]) -> None:
    eiffel = {"lat": PARIS[0], "lon": PARIS[1]}
    assert found(client, near={**eiffel, "radius_km": 1}) == named(photos, "paris")
    assert found(client, near={**eiffel, "radius_km": 12}) == named(photos, "paris")  # Versailles: 14 km
    assert found(client, near={**eiffel, "radius_km": 16}) == named(photos, "paris", "versailles")
    assert found(client, near={"lat": -16.5, "lon": 180.0, "radius_km": 50}) == named(
        photos, "fiji_east", "fiji_west"
    )  # across the 180th meridian
    assert found(client, near={"lat": 90.0, "lon": 0.0, "radius_km": 20_000}) == named(
        photos, "paris", "versailles", "new_york", "fiji_east", "fiji_west"
    )  # everything located, from the pole


def test_bbox_and_a_box_across_the_antimeridian(client: TestClient, photos: dict[str, str]) -> None:
    ile_de_france = {"min_lat": 48.0, "min_lon": 1.5, "max_lat": 49.5, "max_lon": 3.5}
    assert found(client, bbox=ile_de_france) == named(photos, "paris", "versailles")
    across = {"min_lat": -20.0, "min_lon": 179.0, "max_lat": -10.0, "max_lon": -179.0}
    assert found(client, bbox=across) == named(photos, "fiji_east", "fiji_west")
    assert found(client, bbox=across, taken_after="2021-01-01") == named(photos, "fiji_west")


@pytest.mark.parametrize(
    "filters",
    [
        {"taken_after": "2024-07-14T00:00:00Z"},  # a wall-clock time has no zone
        {"taken_after": "2024-08-01", "taken_before": "2024-07-01"},
        {"taken_after": "last summer"},
        {"camera": ""},
        {"camera": "   "},
        {"camera": "x" * 129},
        {"near": {"lat": 91, "lon": 0, "radius_km": 1}},
        {"near": {"lat": 0, "lon": 181, "radius_km": 1}},
        {"near": {"lat": 0, "lon": 0, "radius_km": 0}},
        {"near": {"lat": 0, "lon": 0, "radius_km": 30_000}},
        {"near": {"lat": 0, "lon": 0}},
        {"near": {"lat": 0, "lon": 0, "radius_km": 5, "unit": "mi"}},
        {"bbox": {"min_lat": 10, "min_lon": 0, "max_lat": 5, "max_lon": 1}},
        {"bbox": {"min_lat": -91, "min_lon": 0, "max_lat": 5, "max_lon": 1}},
        {"bbox": {"min_lat": 0, "min_lon": 0, "max_lat": 5}},
    ],
)
def test_bad_exif_filters_are_422_problems(client: TestClient, filters: dict[str, Any]) -> None:
    response = client.post("/search", json={"query": "x", "filters": filters})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_odd_exif_never_fails_an_upload(
    client: TestClient, add_images: AddImages, caplog: pytest.LogCaptureFixture
) -> None:
    zero = IFDRational(0, 0)
    odd = [
        {"name": "zero_date", "data": photo_with_exif(make="Canon", taken="0000:00:00 00:00:00")},
        {
            "name": "zero_denominator",
            "data": photo_with_exif(
                fmt="PNG",
                color="green",
                gps_raw={1: "N", 2: (IFDRational(48, 1), zero, zero), 3: "E", 4: (zero, zero, zero)},
            ),
        },
        {
            "name": "maker_note",
            "data": photo_with_exif(fmt="WEBP", color="blue", maker_note=b"\x00" * 1_000_000),
        },
        {
            "name": "truncated",
            "data": photo_with_exif_bytes(
                b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05", fmt="JPEG", color="white"
            ),
        },
    ]
    with caplog.at_level(logging.WARNING):
        ids = add_images(*odd).ids
    for name, image_id in ids.items():
        record = client.get(f"/images/{image_id}").json()
        assert record["status"] == "ready", (name, record)
        assert record["taken_at"] is None and record["location"] is None, name
    assert client.get(f"/images/{ids['zero_date']}").json()["camera"] == "Canon"
    logged = [r for r in caplog.records if r.getMessage() == "odd EXIF ignored"]
    assert {getattr(r, "image_id", None) for r in logged} >= {
        str(ids[name]) for name in ("zero_date", "zero_denominator", "truncated")
    }


def test_locations_are_not_stored_when_the_setting_says_so(
    client: TestClient, add_images: AddImages, settings: Settings
) -> None:
    configure(settings.model_copy(update={"store_location": False}))
    image_id = add_images({"name": "p", "data": photo_with_exif(make="Canon", gps=PARIS)}).ids["p"]

    record = client.get(f"/images/{image_id}").json()
    assert record["location"] is None and record["camera"] == "Canon"
    with get_runtime().database.connection() as conn:
        row = conn.execute("SELECT latitude, longitude FROM images WHERE id = %s", (image_id,)).fetchone()
    assert row == (None, None)


def test_thumbnails_of_located_photos_carry_no_exif(client: TestClient, photos: dict[str, str]) -> None:
    storage = get_runtime().storage
    for image_id in photos.values():
        thumbnail = Image.open(
            io.BytesIO(storage.get(thumbnail_key(UUID(DEFAULT_TENANT_ID), UUID(image_id))))
        )
        assert "exif" not in thumbnail.info and not thumbnail.getexif()


def search_text(client: TestClient, query: str, **body: Any) -> dict[str, Any]:
    response = client.post("/search", json={"query": query, "mode": "hybrid", "limit": 100, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_dates_and_cameras_written_in_the_query_become_filters(
    client: TestClient, photos: dict[str, str]
) -> None:
    """Query understanding: "circle july 2024" is "circle" among photos taken in July 2024."""
    answer = search_text(client, "circle july 2024")
    assert {r["id"] for r in answer["results"]} == named(photos, "paris", "versailles")
    assert answer["interpreted"] == {
        "taken_after": "2024-07-01T00:00:00",
        "taken_before": "2024-08-01T00:00:00",
        "camera": None,
        "remaining_text": "circle",
    }

    answer = search_text(client, "canon eos circle")
    assert {r["id"] for r in answer["results"]} == named(photos, "paris")
    assert answer["interpreted"]["camera"] == "canon eos"

    answer = search_text(client, "iphone 15 circle 2024")
    assert {r["id"] for r in answer["results"]} == named(photos, "versailles")


def test_parse_false_and_the_requests_own_filters_keep_the_text_as_written(
    client: TestClient, photos: dict[str, str]
) -> None:
    as_written = search_text(client, "circle july 2024", parse=False)
    assert "interpreted" not in as_written
    assert len(as_written["results"]) == len(photos)  # the vector branch finds every circle

    # The request's own date range wins; the year in the text stays text.
    own = search_text(
        client, "circle 2023", filters={"taken_after": "2024-01-01", "taken_before": "2025-01-01"}
    )
    assert "interpreted" not in own
    assert {r["id"] for r in own["results"]} == named(photos, "paris", "versailles")

    # Nothing is guessed: a query with no date or camera answers without `interpreted`.
    assert "interpreted" not in search_text(client, "may circle")
