"""POST /images and the record routes, through the upload function's app on real Postgres + storage."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.images import encode, make_image, make_picture, png_header_claiming

from imagesearch.config import DEFAULT_TENANT_ID, Settings
from imagesearch.db import Database
from imagesearch.runtime import configure
from imagesearch.storage import ObjectStorage


def upload(client: TestClient, data: bytes, filename: str = "photo.png", **fields: Any) -> Any:
    content_type = fields.pop("content_type", "application/octet-stream")
    return client.post("/images", files={"file": (filename, data, content_type)}, data=fields)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_upload_stores_the_object_and_a_pending_record(client: TestClient, storage: ObjectStorage) -> None:
    data = make_image(color="red", size=(120, 80))

    response = upload(client, data, filename="red.png", title="Red dot", tags=["Colour, Test", "dots"])

    assert response.status_code == 201, response.text
    image = response.json()
    assert image["status"] == "pending"
    assert (image["width"], image["height"], image["size"]) == (120, 80, len(data))
    assert image["content_type"] == "image/png"
    assert image["tags"] == ["colour", "test", "dots"]
    assert image["filename"] == "red.png" and image["title"] == "Red dot"
    assert storage.get(f"originals/{DEFAULT_TENANT_ID}/{image['id']}") == data


def test_type_comes_from_the_bytes_not_the_name_or_header(client: TestClient) -> None:
    response = upload(client, make_image(fmt="JPEG"), filename="looks.png", content_type="text/plain")
    assert response.status_code == 201
    assert response.json()["content_type"] == "image/jpeg"


@pytest.mark.parametrize(("fmt", "content_type"), [("AVIF", "image/avif"), ("HEIF", "image/heic")])
def test_avif_and_heic_uploads_are_accepted_and_truncated_ones_refused(
    client: TestClient, fmt: str, content_type: str
) -> None:
    data = make_image(fmt=fmt, size=(160, 90))
    response = upload(client, data, filename="IMG_0042.HEIC", content_type="application/octet-stream")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == content_type
    assert (response.json()["width"], response.json()["height"]) == (160, 90)
    assert assert_problem(upload(client, data[: len(data) // 2]), 415)["reason"] == "truncated"


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF"])
def test_avif_and_heic_with_broken_pixel_data_are_refused_as_corrupt(client: TestClient, fmt: str) -> None:
    """Every box in place, the coded pixels zeroed: libavif raises RuntimeError, libheif EOFError."""
    data = make_image(fmt=fmt, size=(160, 90))
    at = data.index(b"mdat") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    zeroed = data[: at + 8] + bytes(size - 8) + data[at + size :]
    assert assert_problem(upload(client, zeroed), 415)["reason"] == "corrupt"
    assert client.get("/images").json()["items"] == []


def test_same_bytes_again_returns_the_existing_record_with_200(client: TestClient) -> None:
    data = make_image(color="blue")
    first = upload(client, data, filename="a.png")
    second = upload(client, data, filename="b.png", title="another name")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["filename"] == "a.png"


def test_exif_orientation_decides_width_and_height(client: TestClient) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = encode(make_picture(size=(200, 100)), "JPEG", exif=exif)
    response = upload(client, data, filename="phone.jpg")
    assert response.status_code == 201
    assert (response.json()["width"], response.json()["height"]) == (100, 200)


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 415, "empty"),
        (b"just some text, honest", 415, "unsupported_format"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>',
            415,
            "unsupported_format",
        ),
        (b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", 415, "unsupported_format"),
        (make_image(fmt="JPEG", size=(300, 300))[:600], 415, "truncated"),
        (png_header_claiming(100_000, 100_000), 413, "too_many_pixels"),
    ],
    ids=["empty", "text", "svg", "html", "truncated-jpeg", "png-bomb-header"],
)
def test_bad_files_get_a_clear_problem_and_nothing_is_stored(
    client: TestClient, db: Database, data: bytes, status: int, reason: str
) -> None:
    body = assert_problem(upload(client, data, filename="evil.jpg"), status)
    assert body["reason"] == reason
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (0,)


def test_over_the_byte_limit_is_413(client: TestClient, settings: Settings) -> None:
    configure(settings.model_copy(update={"max_upload_bytes": 1000}))
    body = assert_problem(upload(client, make_image(size=(400, 400), fmt="BMP")), 413)
    assert "limit" in body["detail"]


def test_missing_file_field_is_422(client: TestClient) -> None:
    assert_problem(client.post("/images", data={"title": "no file"}), 422)


def test_odd_unicode_and_sql_metacharacters_are_just_text(client: TestClient) -> None:
    title = "Robert'); DROP TABLE images;-- \u202e\u0000 Zoë 🐕 \u0301"
    response = upload(client, make_image(), title=title, tags=["%_\\", "' OR 1=1 --"])
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["title"].startswith("Robert'); DROP TABLE images;-- ")
    assert "\u0000" not in image["title"] and "\u202e" not in image["title"]
    assert image["tags"] == ["%_\\", "' or 1=1 --"]
    assert client.get("/images").status_code == 200


def test_path_traversal_in_the_filename_keeps_only_the_last_segment(client: TestClient) -> None:
    response = upload(client, make_image(), filename="../../etc/passwd")
    assert response.status_code == 201
    assert response.json()["filename"] == "passwd"


def test_get_and_not_found(client: TestClient) -> None:
    image = upload(client, make_image()).json()
    assert client.get(f"/images/{image['id']}").json()["id"] == image["id"]
    assert_problem(client.get(f"/images/{uuid.uuid4()}"), 404)
    assert_problem(client.get("/images/not-a-uuid"), 422)


def test_list_is_newest_first_with_stable_cursor_pages(client: TestClient) -> None:
    ids = [
        upload(client, make_image(color=c)).json()["id"] for c in ("red", "green", "blue", "yellow", "white")
    ]

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/images", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))
    assert cursor is None


def test_list_filters_by_status_and_tag(client: TestClient, db: Database) -> None:
    tagged = upload(client, make_image(color="red"), tags=["Beach"]).json()
    upload(client, make_image(color="blue"), tags=["city"])
    with db.connection() as conn:
        conn.execute("UPDATE images SET status = 'ready' WHERE id = %s", (tagged["id"],))
    assert [i["id"] for i in client.get("/images", params={"tag": "BEACH"}).json()["items"]] == [tagged["id"]]
    assert [i["id"] for i in client.get("/images", params={"status": "ready"}).json()["items"]] == [
        tagged["id"]
    ]
    assert_problem(client.get("/images", params={"status": "lost"}), 422)
    assert_problem(client.get("/images", params={"limit": 0}), 422)
    assert_problem(client.get("/images", params={"limit": 101}), 422)
    assert_problem(client.get("/images", params={"cursor": "garbage!"}), 422)


def test_patch_changes_metadata_and_the_keyword_index_at_once(client: TestClient, db: Database) -> None:
    image = upload(client, make_image(), title="old").json()

    response = client.patch(f"/images/{image['id']}", json={"title": "Zebra crossing", "tags": ["Street"]})

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["tags"]) == ("Zebra crossing", ["street"])
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM images WHERE search_tsv @@ websearch_to_tsquery('english', 'zebra street')"
        ).fetchone()
    assert row == (1,)
    assert client.patch(f"/images/{image['id']}", json={"description": None}).status_code == 200
    assert_problem(client.patch(f"/images/{image['id']}", json={"tags": None}), 422)
    assert_problem(client.patch(f"/images/{image['id']}", json={"owner": "me"}), 422)
    assert_problem(client.patch(f"/images/{uuid.uuid4()}", json={"title": "x"}), 404)


def test_delete_removes_row_embeddings_object_and_thumbnail(
    client: TestClient, db: Database, storage: ObjectStorage
) -> None:
    image = upload(client, make_image()).json()
    key = f"originals/{DEFAULT_TENANT_ID}/{image['id']}"
    thumbnail = f"thumbnails/{DEFAULT_TENANT_ID}/{image['id']}.webp"
    storage.put(thumbnail, b"thumb", content_type="image/webp")

    assert client.delete(f"/images/{image['id']}").status_code == 204

    assert not storage.exists(key) and not storage.exists(thumbnail)
    assert_problem(client.get(f"/images/{image['id']}"), 404)
    assert_problem(client.delete(f"/images/{image['id']}"), 404)


def test_presigned_upload_creates_a_pending_record(client: TestClient) -> None:
    response = client.post(
        "/uploads", json={"filename": "big.jpg", "content_type": "image/jpeg", "size": 12345, "tags": ["raw"]}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["method"] == "PUT" and body["headers"] == {"Content-Type": "image/jpeg"}
    assert body["upload_url"].startswith("http://testserver/files/originals/")
    assert client.get(f"/images/{body['id']}").json()["status"] == "pending"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"filename": "x.svg", "content_type": "image/svg+xml", "size": 10}, 415),
        ({"filename": "x.jpg", "content_type": "image/jpeg", "size": 0}, 422),
        ({"filename": "x.jpg", "content_type": "image/jpeg", "size": 10**12}, 413),
        ({"filename": "   ", "content_type": "image/jpeg", "size": 10}, 422),
        ({"content_type": "image/jpeg", "size": 10}, 422),
    ],
)
def test_presigned_upload_refuses_bad_announcements(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    assert_problem(client.post("/uploads", json=body), status)


def test_not_json_is_a_problem_too(client: TestClient) -> None:
    response = client.post(
        "/uploads", content=io.BytesIO(b"{not json"), headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


def test_presigned_upload_of_bytes_already_here_needs_no_url(client: TestClient) -> None:
    import hashlib

    data = make_image(color="green")
    existing = upload(client, data).json()
    body = {"filename": "again.png", "content_type": "image/png", "size": len(data)}

    response = client.post("/uploads", json=body | {"sha256": hashlib.sha256(data).hexdigest().upper()})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == existing["id"] and response.json()["upload_url"] is None
    assert_problem(client.post("/uploads", json=body | {"sha256": "abc"}), 422)
