"""Security checks: traversal, oversized input, injection-shaped text, spoofed types, polyglots,
short-lived single-object URLs, and no secrets in logs or error bodies."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from support.images import make_image
from support.live import live_stack

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.config import AuthMode, Settings, load_settings
from imagesearch.db import Database
from imagesearch.local.server import local_app
from imagesearch.runtime import configure, reset

HOSTILE = [
    "'; DROP TABLE images; --",
    '" OR "1"="1',
    "%' AND 1=1 --",
    "\\x00\\'\\\"",
    "$$; SELECT pg_sleep(10); $$",
    "<script>alert(1)</script>",
    "ｓｅｌｅｃｔ",
    "𝕊𝕖𝕝𝕖𝕔𝕥 🐍" * 200,
    "a" * 20_000,
]


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(local_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_injection_shaped_text_in_every_field_is_just_text(client: TestClient, text: str) -> None:
    response = client.post(
        "/images",
        files={"file": (text[:300] + ".png", make_image())},
        data={"title": text[:500], "description": text[:5000], "tags": [text[:60]]},
    )
    assert response.status_code == 201, response.text
    image_id = response.json()["id"]
    assert client.patch(f"/images/{image_id}", json={"title": text[:500]}).status_code == 200
    for body in (
        {"query": text},
        {"query": text, "mode": "keyword"},
        {"query": text, "filters": {"tags": [text[:60]]}},
    ):
        assert client.post("/search", json=body).status_code == 200
    assert client.get("/images", params={"tag": text[:60]}).status_code == 200
    assert client.get("/images").json()["items"][0]["id"] == image_id  # the table is intact


def test_oversized_bodies_are_refused_before_they_are_read(client: TestClient) -> None:
    huge_json = b'{"query": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/search", content=huge_json, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
    response = client.post(
        "/images",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": str(10**9)},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "cookie", "x-anything"])
def test_oversized_headers_are_refused_before_any_is_read(
    client: TestClient, settings: Settings, header: str
) -> None:
    value = "Bearer " + "k" * 20_000 if header == "authorization" else "v" * 20_000
    for method, path in [("GET", "/images"), ("POST", "/search"), ("GET", "/health")]:
        response = client.request(method, path, headers={header: value}, json={"query": "red"})
        assert response.status_code == 431, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Many small headers add up the same way; headers under the limit still work.
    many = {f"x-h{i}": "v" * 100 for i in range(200)}
    assert client.get("/images", headers=many).status_code == 431
    assert client.get("/images", headers={header: "v" * 4_000}).status_code in (200, 401)


def test_a_megabyte_of_headers_over_real_http_leaves_the_server_serving(
    tmp_path: Path, model_bundle: Path
) -> None:
    with live_stack(tmp_path / "stack", model_dir=model_bundle) as stack:
        with httpx.Client(base_url=stack.base_url, timeout=30) as http:
            for _ in range(3):
                response = http.get("/images", headers={"x-junk": "j" * 1_000_000})
                assert response.status_code == 431
                assert response.json()["status"] == 431
            assert http.get("/images").status_code == 200


def test_spoofed_content_types_and_polyglots(client: TestClient) -> None:
    # PNG bytes claiming to be text: stored as what they are.
    spoofed = client.post("/images", files={"file": ("notes.txt", make_image(), "text/plain")})
    assert spoofed.status_code == 201 and spoofed.json()["content_type"] == "image/png"
    # HTML claiming to be a PNG, a GIF header glued to a script, an SVG with a script: refused.
    for name, data, claimed in [
        ("x.png", b"<html><body onload=alert(1)></body></html>", "image/png"),
        ("x.gif", b"GIF89a/*<script>alert(1)</script>*/", "image/gif"),
        (
            "x.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
    ]:
        response = client.post("/images", files={"file": (name, data, claimed)})
        assert response.status_code == 415, (name, response.text)


def test_a_polyglot_that_is_a_valid_image_is_served_only_as_an_image(
    tmp_path: Path, model_bundle: Path
) -> None:
    polyglot = make_image() + b"<html><script>alert(document.cookie)</script></html>"
    with live_stack(tmp_path / "stack", model_dir=model_bundle) as stack:
        image = httpx.post(f"{stack.base_url}/images", files={"file": ("p.png", polyglot)}).json()
        assert stack.events is not None and stack.events.drain(60)
        served = httpx.get(httpx.get(f"{stack.base_url}/images/{image['id']}").json()["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


def test_presigned_urls_are_short_lived_and_for_one_object(tmp_path: Path, model_bundle: Path) -> None:
    with live_stack(tmp_path / "stack", model_dir=model_bundle, presign_expiry_seconds=60) as stack:
        announced = httpx.post(
            f"{stack.base_url}/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 5}
        ).json()
        url = announced["upload_url"]
        expires = int(parse_qs(urlparse(url).query)["expires"][0])
        assert 0 < expires - time.time() <= 60
        other_key = url.replace(announced["id"], "00000000-0000-0000-0000-000000000000")
        assert httpx.put(other_key, content=b"12345", headers=announced["headers"]).status_code == 401
        traversal = url.replace("/files/originals/", "/files/originals/../thumbnails/")
        assert httpx.put(traversal, content=b"12345", headers=announced["headers"]).status_code in (
            401,
            404,
            422,
        )
        get_url = url.replace("ct=image%2Fpng", "")
        assert httpx.get(get_url).status_code == 401  # a PUT URL is not a GET URL


def test_no_secrets_in_logs_or_error_bodies(
    database_url: str,
    tmp_path: Path,
    model_bundle: Path,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = "pw-Sup3rSecret-9d1e"
    key, _ = ApiKeys(db).create("secretive")
    wrong_key = key[:-6] + "ZZZZZZ"
    # A URL with a password (trust auth ignores it), then the same URL pointing nowhere.
    with_password = database_url.replace("postgres@", f"postgres:{password}@", 1)
    dead = with_password.replace("host=", "host=/nonexistent")
    bodies: list[str] = []
    for url in (with_password, dead):
        configure(
            load_settings(
                database_url=url,
                storage_url=f"file://{tmp_path}/o",
                model_dir=model_bundle,
                auth_mode=AuthMode.API_KEY,
                db_connect_timeout=1,
                signing_secret="sign-Secret-77",
            )
        )
        with caplog.at_level(logging.DEBUG), TestClient(local_app(), raise_server_exceptions=False) as c:
            for response in (
                c.get("/images", headers={"X-API-Key": wrong_key}),
                c.get("/images", headers={"X-API-Key": key}),
                c.post("/search", headers={"Authorization": f"Bearer {key}"}, json={"query": "x"}),
            ):
                bodies.append(response.text)
    reset()
    everything = "\n".join(bodies) + caplog.text + "\n".join(capsys.readouterr())
    assert any('"status":503' in b for b in bodies)  # the dead database was reached for
    for secret in (password, key, wrong_key, "sign-Secret-77"):
        assert secret not in everything
