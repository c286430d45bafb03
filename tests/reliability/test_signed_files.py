"""The local server's signed-file routes (GET and PUT /files/{key}), which the OpenAPI schema leaves out and
so the schema fuzzing never reaches: a signed URL works, and no key, query value or header gets a 5xx, an
error that is not a 4xx problem, or a write without a valid signature."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_from_bytes, urlencode, urlparse

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import FUZZING, examples
from support.images import make_image

from imagesearch.errors import Unauthorized
from imagesearch.http.problems import PROBLEM_JSON
from imagesearch.local.server import local_app
from imagesearch.storage.filesystem import FileSystemStorage
from imagesearch.storage.signing import UrlSigner

KEY = "originals/00000000-0000-0000-0000-000000000001/4c1d3b0e-8f5a-4d2e-9b7a-2f0c6e1d5a90"
PNG = make_image(color="green")


@pytest.fixture
def storage(tmp_path: Path) -> FileSystemStorage:
    return FileSystemStorage(tmp_path / "objects", signer=UrlSigner(b"test-secret", "http://testserver"))


@pytest.fixture
def client(storage: FileSystemStorage) -> Iterator[TestClient]:
    with TestClient(local_app(storage), raise_server_exceptions=False) as test_client:
        yield test_client


def stored(storage: FileSystemStorage) -> set[tuple[str, int]]:
    """Every file under the storage root (objects, metadata, temporary files) and its size."""
    return {
        (
            os.path.relpath(os.path.join(folder, name), storage.root),
            os.path.getsize(os.path.join(folder, name)),
        )
        for folder, _, names in os.walk(storage.root)
        for name in names
    }


def assert_refused(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    assert response.json()["status"] == response.status_code


def with_query(url: str, **changes: str) -> str:
    """`url` with some query values replaced by the given (already percent-encoded) text."""
    parsed = urlparse(url)
    query = {name: quote(values[0], safe="") for name, values in parse_qs(parsed.query).items()}
    query.update(changes)
    return parsed._replace(query="&".join(f"{name}={value}" for name, value in query.items())).geturl()


def test_a_signed_put_then_a_signed_get_roundtrip(client: TestClient, storage: FileSystemStorage) -> None:
    upload = storage.presigned_put(KEY, content_type="image/png", size=len(PNG), expires_in=60)
    put = client.put(upload.url, content=PNG, headers=upload.headers)
    assert put.status_code == 200, put.text
    assert storage.get(KEY) == PNG

    got = client.get(storage.presigned_get(KEY, expires_in=60))
    assert got.status_code == 200, got.text
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["etag"] == put.headers["etag"]
    assert got.headers["x-content-type-options"] == "nosniff"


# Each is a whole request line's path and query, percent-encoded as a client would send it.
BAD_URLS = {
    "non-ASCII signature (the issue's 500)": f"/files/{KEY}?expires=1&sig=%C3%A9",
    "signature of UTF-8-encoded surrogate": f"/files/{KEY}?expires=1&sig=%ED%A0%80",
    "signature of invalid UTF-8": f"/files/{KEY}?expires=1&sig=%FF%FE",
    "signature with a NUL": f"/files/{KEY}?expires=1&sig=%00",
    "expires in Arabic-Indic digits": f"/files/{KEY}?expires=%D9%A1%D9%A2&sig=a",
    "expires negative": f"/files/{KEY}?expires=-5&sig=a",
    "expires with spaces": f"/files/{KEY}?expires=%2012%20&sig=a",
    "expires with underscores": f"/files/{KEY}?expires=1_000&sig=a",
    "expires huge": f"/files/{KEY}?expires={'9' * 5000}&sig=a",
    "expires not a number": f"/files/{KEY}?expires=soon&sig=a",
    "expires missing": f"/files/{KEY}?sig=a",
    "sig missing": f"/files/{KEY}?expires=1",
    "key of a UTF-8-encoded surrogate": "/files/originals/t/%ED%A0%80?expires=1&sig=a",
    "key of invalid UTF-8": "/files/%FF?expires=1&sig=%C3%A9",
    "key with a NUL": "/files/originals/t/%00?expires=1&sig=%C3%A9",
    "key with a traversal": "/files/originals/t/%2E%2E/%2E%2E/x?expires=1&sig=%C3%A9",
    "key empty": "/files/?expires=1&sig=a",
}


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("url", list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_bad_signatures_expiries_and_keys_are_refused_with_a_problem(
    client: TestClient, storage: FileSystemStorage, method: str, url: str
) -> None:
    response = client.request(method, url, content=PNG, headers={"Content-Type": "image/png"})
    assert_refused(response)
    assert stored(storage) == set()


def test_a_signed_url_is_bound_to_the_exact_text_of_its_expiry(
    client: TestClient, storage: FileSystemStorage
) -> None:
    url = storage.presigned_get(KEY, expires_in=60)
    storage.put(KEY, PNG, content_type="image/png")
    assert client.get(url).status_code == 200
    expires = parse_qs(urlparse(url).query)["expires"][0]
    arabic_indic = "".join(chr(0x0660 + int(digit)) for digit in expires)  # int() reads it as the same number
    for same_number in (f"+{expires}", f"0{expires}", f"%20{expires}", quote(arabic_indic)):
        assert_refused(client.get(with_query(url, expires=same_number)))


def test_an_expired_signed_url_is_refused(client: TestClient, storage: FileSystemStorage) -> None:
    storage.put(KEY, PNG, content_type="image/png")
    response = client.get(storage.presigned_get(KEY, expires_in=-1))
    assert_refused(response)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


@pytest.mark.parametrize(
    "content_type",
    [None, "", "image/png; charset=utf-8", "IMAGE/PNG", "image/png\x00", "text/html", "image/p\xe9ng"],
)
def test_a_put_with_another_content_type_than_signed_is_refused(
    client: TestClient, storage: FileSystemStorage, content_type: str | None
) -> None:
    upload = storage.presigned_put(KEY, content_type="image/png", size=len(PNG), expires_in=60)
    headers = {} if content_type is None else {b"content-type": content_type.encode("latin-1")}
    assert_refused(client.put(upload.url, content=PNG, headers=headers))
    assert stored(storage) == set()


@pytest.mark.parametrize("key", ["originals/t/\ud800", "originals/\udcff/1", "\udc80"])
def test_a_key_with_a_lone_surrogate_is_unauthorized_not_an_encoding_error(key: str) -> None:
    # HTTP servers decode paths with replacement characters; this is the signer's own guard.
    signer = UrlSigner(b"test-secret", "http://testserver")
    with pytest.raises(Unauthorized):
        signer.verify("GET", key, expires=str(int(time.time()) + 60), sig="a")


# --- fuzzing ---------------------------------------------------------------------------------------------
# Query values and key segments as a hostile client sends them: arbitrary text (control characters and
# non-ASCII included) or arbitrary bytes (invalid UTF-8, encoded surrogates), always percent-encoded.
TEXT = st.text(max_size=40)
RAW = st.one_of(
    TEXT.map(lambda text: quote(text, safe="")),
    st.binary(max_size=20).map(lambda data: quote_from_bytes(data, safe="")),
)
HEADER_VALUE = st.binary(max_size=40).filter(lambda value: b"\r" not in value and b"\n" not in value)


@st.composite
def signed_file_requests(
    draw: st.DrawFn, signer: UrlSigner
) -> tuple[str, str, bytes, dict[bytes, bytes], bool]:
    """(method, path and query, body, headers, whether the signature is the signer's own for the request)."""
    method = draw(st.sampled_from(["GET", "PUT"]))
    body = draw(st.binary(max_size=64))
    signed = draw(st.booleans())
    if signed:
        # A valid signature over the values as sent (text the server decodes back unchanged).
        key = draw(st.sampled_from([KEY, "originals/t/1", "thumbnails/t/1.webp"]))
        expires = draw(st.sampled_from([str(int(time.time()) + 60), "1", draw(TEXT)]))
        ct = draw(st.sampled_from(["image/png", "", draw(TEXT)])) if method == "PUT" else ""
        size = draw(st.sampled_from([str(len(body)), "", draw(TEXT)])) if method == "PUT" else ""
        # `sign` takes only well-formed values; these are what a client may have bent them into.
        sig = signer._signature(method, key, expires, ct, size)
        query = urlencode({"expires": expires, "sig": sig, "ct": ct, "size": size})
        path = quote(key)
    else:
        path = "/".join(draw(st.lists(RAW, min_size=1, max_size=4)))
        expires = draw(st.one_of(RAW, st.integers(-(10**30), 10**30).map(str)))
        sig = draw(st.one_of(RAW, st.text("0123456789abcdef", min_size=64, max_size=64)))
        extra = draw(
            st.lists(st.tuples(st.sampled_from(["expires", "sig", "ct", "size", "x"]), RAW), max_size=4)
        )
        query = "&".join(f"{name}={value}" for name, value in [("expires", expires), ("sig", sig), *extra])
        ct = draw(TEXT)
    headers = {b"x-anything": draw(HEADER_VALUE)}
    content_type = draw(
        st.one_of(
            st.none(), st.just(ct), st.just(ct), HEADER_VALUE.map(lambda value: value.decode("latin-1"))
        )
    )
    if content_type is not None:
        headers[b"content-type"] = content_type.encode("utf-8")
    return method, f"/files/{path}?{query}", body, headers, signed


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not FUZZING,
)
@given(data=st.data())
def test_no_request_to_the_signed_file_routes_fails_or_writes_without_a_signature(
    client: TestClient, storage: FileSystemStorage, data: st.DataObject
) -> None:
    method, url, body, headers, signed = data.draw(signed_file_requests(storage.signer))
    before = stored(storage)
    response = client.request(method, url, content=body, headers=headers)
    assert response.status_code < 500, (url, response.status_code, response.text)
    if response.status_code >= 400:
        assert_refused(response)
    if stored(storage) != before:
        assert signed and method == "PUT" and response.status_code == 200, (url, response.status_code)
