"""Object storage adapters: the same contract on the filesystem and on S3 (moto)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from imagesearch.errors import InvalidRequest, ObjectNotFound, Unauthorized
from imagesearch.storage import ObjectInfo, ObjectStorage, storage_from_url
from imagesearch.storage.filesystem import FileSystemStorage
from imagesearch.storage.s3 import S3Storage

BUCKET = "imagesearch-test"


@pytest.fixture
def fs_storage(tmp_path: Path) -> FileSystemStorage:
    storage = storage_from_url(
        f"file://{tmp_path}/objects", signing_secret="s3cret", public_base_url="http://local"
    )
    assert isinstance(storage, FileSystemStorage)
    return storage


@pytest.fixture
def s3_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Storage]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        storage = storage_from_url(f"s3://{BUCKET}/app")
        assert isinstance(storage, S3Storage)
        yield storage


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest) -> ObjectStorage:
    return request.getfixturevalue("fs_storage" if request.param == "filesystem" else "s3_storage")


def test_put_get_head_delete(storage: ObjectStorage) -> None:
    key = "originals/tenant/ünïcode name.jpg"
    storage.put(key, b"\xff\xd8bytes", content_type="image/jpeg", metadata={"title": "x"})

    assert storage.exists(key)
    assert storage.get(key) == b"\xff\xd8bytes"
    info = storage.head(key)
    assert (info.size, info.content_type, dict(info.metadata)) == (7, "image/jpeg", {"title": "x"})
    assert info.etag

    storage.delete(key)
    storage.delete(key)  # idempotent, as S3's
    assert not storage.exists(key)
    with pytest.raises(ObjectNotFound):
        storage.get(key)
    with pytest.raises(ObjectNotFound):
        storage.head(key)


def test_list_by_prefix(storage: ObjectStorage) -> None:
    for key in ("originals/a/1", "originals/a/2", "originals/b/1", "thumbnails/a/1.webp"):
        storage.put(key, b"x", content_type="application/octet-stream")
    assert sorted(info.key for info in storage.list("originals/a/")) == ["originals/a/1", "originals/a/2"]
    assert len(list(storage.list("originals/"))) == 3


def test_overwrite_replaces_content(storage: ObjectStorage) -> None:
    storage.put("k/1", b"first", content_type="text/plain")
    storage.put("k/1", b"second!", content_type="text/plain")
    assert storage.get("k/1") == b"second!"
    assert storage.head("k/1").size == 7


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../etc/passwd", "/abs/path", "a//b", "a/.hidden", "a\\b", "", "x\x00y"]
)
def test_filesystem_refuses_keys_that_escape_or_hide(fs_storage: FileSystemStorage, key: str) -> None:
    with pytest.raises(InvalidRequest):
        fs_storage.put(key, b"x", content_type="text/plain")
    with pytest.raises(InvalidRequest):
        fs_storage.get(key)


def test_filesystem_tells_listeners_about_every_put(fs_storage: FileSystemStorage) -> None:
    seen: list[ObjectInfo] = []
    fs_storage.add_listener(seen.append)
    fs_storage.put("originals/t/1", b"abc", content_type="image/png")
    assert [(i.key, i.size) for i in seen] == [("originals/t/1", 3)]


def test_filesystem_urls_are_signed_bound_to_method_and_key_and_expire(fs_storage: FileSystemStorage) -> None:
    url = fs_storage.presigned_get("originals/t/1", expires_in=60)
    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    key = parsed.path.removeprefix("/files/")
    signer = fs_storage.signer

    signer.verify("GET", key, expires=query["expires"], sig=query["sig"])
    with pytest.raises(Unauthorized):
        signer.verify("PUT", key, expires=query["expires"], sig=query["sig"])
    with pytest.raises(Unauthorized):
        signer.verify("GET", "originals/t/2", expires=query["expires"], sig=query["sig"])
    with pytest.raises(Unauthorized):
        signer.verify("GET", key, expires=str(int(query["expires"]) + 3600), sig=query["sig"])
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify("GET", key, expires=query["expires"], sig=query["sig"], now=time.time() + 61)


def test_filesystem_put_urls_bind_content_type_and_size(fs_storage: FileSystemStorage) -> None:
    request = fs_storage.presigned_put("originals/t/1", content_type="image/png", size=123, expires_in=60)
    query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
    assert request.method == "PUT" and request.headers == {"Content-Type": "image/png"}

    fs_storage.signer.verify(
        "PUT",
        "originals/t/1",
        expires=query["expires"],
        sig=query["sig"],
        content_type="image/png",
        size="123",
    )
    with pytest.raises(Unauthorized):
        fs_storage.signer.verify(
            "PUT",
            "originals/t/1",
            expires=query["expires"],
            sig=query["sig"],
            content_type="image/png",
            size="999999",
        )


def test_s3_presigned_urls_work_over_real_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto checks neither signatures nor expiry: this proves the URLs and headers are usable, no more.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        storage = storage_from_url(f"s3://{BUCKET}", endpoint_url=endpoint, region="us-east-1")

        put = storage.presigned_put("originals/t/photo.png", content_type="image/png", size=5, expires_in=300)
        response = httpx.put(put.url, content=b"12345", headers=dict(put.headers))
        assert response.status_code == 200, response.text
        assert storage.head("originals/t/photo.png").content_type == "image/png"

        got = httpx.get(storage.presigned_get("originals/t/photo.png", expires_in=300))
        assert got.status_code == 200 and got.content == b"12345"
    finally:
        server.stop()


def test_url_cache_reuses_urls_within_a_window_and_they_stay_valid(fs_storage: FileSystemStorage) -> None:
    from imagesearch.storage.urls import UrlCache

    now = [1_000_000.0]
    cache = UrlCache(fs_storage, expiry_seconds=600, max_entries=2, clock=lambda: now[0])

    first = cache.get("originals/t/1")
    now[0] += 100
    assert cache.get("originals/t/1") == first  # same window: same URL (browsers can cache it)
    expires = int(parse_qs(urlparse(first).query)["expires"][0])
    assert expires - now[0] >= 300 - 100  # valid at least half the expiry after it was first handed out

    now[0] += 300
    second = cache.get("originals/t/1")
    assert second != first
    assert int(parse_qs(urlparse(second).query)["expires"][0]) - now[0] >= 300

    cache.get("originals/t/2")
    cache.get("originals/t/3")
    assert len(cache._urls) == 2


def test_url_cache_get_many_answers_each_key_as_get_does(fs_storage: FileSystemStorage) -> None:
    """A search page's URLs in one call: in the keys' order, the cached ones reused, the others signed."""
    from imagesearch.storage.urls import UrlCache

    now = [1_000_000.0]
    cache = UrlCache(fs_storage, expiry_seconds=600, clock=lambda: now[0])
    cached = cache.get("originals/t/2")
    urls = cache.get_many(["originals/t/1", "originals/t/2", "thumbnails/t/1.webp"])
    assert urls[1] == cached  # reused within the window
    assert urls == [cache.get(k) for k in ("originals/t/1", "originals/t/2", "thumbnails/t/1.webp")]
    now[0] += 700  # a later window: every one signed anew
    assert all(
        a != b for a, b in zip(cache.get_many(["originals/t/1", "originals/t/2"]), urls[:2], strict=True)
    )
