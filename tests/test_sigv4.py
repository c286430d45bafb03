"""Presigned GET URLs without botocore: the same URL as botocore's, for the same instant, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from imagesearch.sigv4 import (
    Credentials,
    current_credentials,
    environment_credentials,
    environment_endpoint,
    presign_get,
    rds_auth_token,
)

KEYS = [
    "tenant-1/originals/0f8c2d1e-3b4a-4c5d-8e9f-0a1b2c3d4e5f.jpg",
    "spaces and+plus/ü ñ 日本 🐍.png",
    "odd/a~b!*'()$&=,;:@[]{}|^`\"<>.webp",
    "percent/%41%2F literal.gif",
    "trailing/slash/",
]
CASES = [
    # (region, endpoint_url, session token)
    ("us-east-1", None, None),
    ("eu-west-1", None, "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with=odd+chars"),
    ("ap-southeast-2", None, None),
    ("us-east-1", "http://127.0.0.1:5000", None),
    ("eu-central-1", "https://minio.example.com:9000/", "tok"),
    ("auto", "https://account.r2.cloudflarestorage.com", None),
    ("us-west-2", "https://storage.example.com/base/path", None),
]


def botocore_url(bucket: str, key: str, region: str, endpoint: str | None, creds: Credentials) -> str:
    client = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"} if endpoint else {}),
    )
    return str(
        client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=900)
    )


@pytest.mark.parametrize(("region", "endpoint", "token"), CASES)
@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_urls_equal_botocores_for_the_same_instant(
    region: str, endpoint: str | None, token: str | None, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token)
    expected = botocore_url("imagesearch-media-1", key, region, endpoint, creds)
    instant = datetime.strptime(parse_qs(urlsplit(expected).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    ours = presign_get(
        "imagesearch-media-1",
        key,
        region=region,
        credentials=creds,
        expires_in=900,
        endpoint_url=endpoint,
        now=instant.replace(tzinfo=UTC),
    )
    assert ours == expected


def test_what_it_does_not_cover_is_left_to_botocore() -> None:
    creds = Credentials("AKID", "SECRET")
    # Dotted bucket names are not valid TLS hosts under amazonaws.com: botocore switches to path style.
    assert presign_get("my.bucket", "k", region="eu-west-1", credentials=creds, expires_in=60) is None
    assert presign_get("b", "k", region="eu-west-1", credentials=creds, expires_in=60) is None
    assert (
        presign_get("bucket", "k", region="x", credentials=creds, expires_in=60, endpoint_url="ftp://h")
        is None
    )


def test_credentials_and_endpoint_come_from_the_environment_as_botocore_takes_them() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "T"}
    assert environment_credentials(env) == Credentials("AKID", "SECRET", "T")
    assert environment_credentials({**env, "AWS_PROFILE": "dev"}) is None  # the profile wins in botocore
    assert environment_credentials({"AWS_ACCESS_KEY_ID": "AKID"}) is None
    assert (
        environment_endpoint({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://b"})
        == "http://b"
    )
    assert environment_endpoint({}) is None


def test_the_s3_store_presigns_without_importing_boto3_when_the_environment_allows(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from imagesearch.storage.factory import storage_from_url\n"
        "store = storage_from_url('s3://imagesearch-media-1/prefix', region='eu-west-1')\n"
        "url = store.presigned_get('t/thumbnails/a.webp', expires_in=60)\n"
        "print(url)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "SECRET",
        "AWS_SESSION_TOKEN": "TOKEN",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.splitlines()
    assert out[0].startswith("https://imagesearch-media-1.s3.amazonaws.com/prefix/t/thumbnails/a.webp?")
    assert "X-Amz-Security-Token=TOKEN" in out[0] and "%2Feu-west-1%2Fs3%2F" in out[0]
    assert out[1] == "[]"
    # A named profile: botocore decides (and is imported).
    profiled = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "AWS_PROFILE": "default", "AWS_CONFIG_FILE": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "botocore" in profiled.stdout or "ProfileNotFound" in profiled.stderr


@pytest.mark.parametrize(
    "token", [None, "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token/with=odd+chars"]
)
@pytest.mark.parametrize(
    ("host", "port", "user"),
    [
        ("imagesearch.proxy-c1x2y3z4.eu-west-1.rds.amazonaws.com", 5432, "imagesearch_app"),
        ("db.cluster-ro-abc.us-east-1.rds.amazonaws.com", 6543, "odd user+ü"),
    ],
)
def test_rds_tokens_equal_botocores_for_the_same_instant(
    host: str, port: int, user: str, token: str | None
) -> None:
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token)
    client = boto3.client(
        "rds",
        region_name="eu-west-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    expected = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region="eu-west-1")
    stamp = parse_qs(urlsplit("https://" + expected).query)["X-Amz-Date"][0]
    instant = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert rds_auth_token(host, port, user, region="eu-west-1", credentials=creds, now=instant) == expected


class CredentialsEndpoint:
    """A container-credentials endpoint as Lambda (with SnapStart) and ECS serve one."""

    def __init__(self, expiration: str) -> None:
        self.requests: list[str | None] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                endpoint.requests.append(self.headers.get("authorization"))
                body = json.dumps(
                    {
                        "AccessKeyId": "ASIACONTAINER",
                        "SecretAccessKey": "container/secret+key",
                        "Token": "container-session-token",
                        "Expiration": expiration,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self.server.server_port}/2018-06-01/credentials"


def test_container_credentials_are_read_once_and_sign_as_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """SnapStart functions get their role's credentials from a local endpoint, not AWS_ACCESS_KEY_ID: the
    presigned URLs (and IAM tokens) stay botocore's, without importing it on the search path."""
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    endpoint = CredentialsEndpoint(later)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(name, "/nonexistent")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.uri)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer local-token")
    try:
        first = current_credentials()
        assert first == Credentials("ASIACONTAINER", "container/secret+key", "container-session-token")
        assert current_credentials() == first
        assert endpoint.requests == ["Bearer local-token"]  # cached until shortly before it expires
        # A session of its own: boto3's default one keeps the credentials it resolved for earlier tests.
        session = boto3.session.Session()
        client = session.client("s3", region_name="eu-west-1", config=Config(signature_version="s3v4"))
        expected = client.generate_presigned_url(
            "get_object", Params={"Bucket": "imagesearch-media-1", "Key": "a/b.webp"}, ExpiresIn=900
        )
        stamp = parse_qs(urlsplit(expected).query)["X-Amz-Date"][0]
        instant = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        ours = presign_get(
            "imagesearch-media-1",
            "a/b.webp",
            region="eu-west-1",
            credentials=first,
            expires_in=900,
            now=instant,
        )
        assert ours == expected
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()


def test_credentials_about_to_expire_are_fetched_again_and_an_unreachable_endpoint_defers_to_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    endpoint = CredentialsEndpoint(soon)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.uri)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t")
    try:
        current_credentials()
        current_credentials()
        assert len(endpoint.requests) == 2
    finally:
        endpoint.server.shutdown()
        endpoint.server.server_close()
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.uri.replace("/2018", "/gone/2018"))
    assert current_credentials() is None
