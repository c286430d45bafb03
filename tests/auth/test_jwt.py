"""JWT auth against a JWKS the test serves itself, with keys the test makes."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.config import AuthMode, Settings
from imagesearch.db import Database
from imagesearch.local.server import local_app
from imagesearch.runtime import configure

ISSUER = "https://id.example.test/"
AUDIENCE = "imagesearch-api"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = rsa_key()
OTHER_KEY = rsa_key()


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(SIGNING_KEY.public_key())) | {
        "kid": "k1",
        "use": "sig",
        "alg": "RS256",
    }
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


@pytest.fixture
def client(settings: Settings, db: Database, jwks_url: str) -> Iterator[TestClient]:
    configure(
        settings.model_copy(
            update={
                "auth_mode": AuthMode.JWT,
                "jwt_issuer": ISSUER,
                "jwt_audience": AUDIENCE,
                "jwt_jwks_url": jwks_url,
                "jwt_tenant_claim": "org",
                "api_key_cache_seconds": 0.0,
            }
        )
    )
    with TestClient(local_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def token(key: Any = SIGNING_KEY, *, algorithm: str = "RS256", kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "org": "acme", "iat": now, "exp": now + 300}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def unsigned(claims: dict[str, Any]) -> str:
    """An "alg": "none" token: header and claims, no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}."


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def test_a_valid_token_acts_as_the_tenant_it_names(client: TestClient, db: Database) -> None:
    response = client.post(
        "/uploads",
        headers=bearer(token()),
        json={"filename": "a.png", "content_type": "image/png", "size": 5},
    )
    assert response.status_code == 201, response.text
    assert client.get("/images", headers=bearer(token())).json()["items"][0]["id"] == response.json()["id"]
    assert client.get("/images", headers=bearer(token(org="other-org"))).json()["items"] == []
    with db.connection() as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM tenants")}
    assert {"acme", "other-org"} <= names


@pytest.mark.parametrize(
    "make",
    [
        lambda: token(exp=int(time.time()) - 120),
        lambda: token(aud="someone-else"),
        lambda: token(iss="https://evil.example.test/"),
        lambda: token(OTHER_KEY),
        lambda: token(kid="unknown"),
        lambda: token(org=None),
        lambda: token(exp=None),
        lambda: unsigned({"iss": ISSUER, "aud": AUDIENCE, "org": "acme", "exp": int(time.time()) + 60}),
        lambda: "not.a.jwt",
    ],
    ids=[
        "expired",
        "audience",
        "issuer",
        "foreign-signature",
        "unknown-kid",
        "no-tenant",
        "no-expiry",
        "alg-none",
        "garbage",
    ],
)
def test_invalid_tokens_are_401(client: TestClient, make: Any) -> None:
    response = client.get("/images", headers=bearer(make()))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_symmetric_algorithms_are_refused(client: TestClient) -> None:
    """Algorithm confusion: an HS256 token (as if signed with the public key) is not accepted."""
    response = client.get("/images", headers=bearer(token(key=b"public-key-bytes-" * 4, algorithm="HS256")))
    assert response.status_code == 401


def test_api_keys_still_work_beside_jwt(client: TestClient, db: Database) -> None:
    key, _ = ApiKeys(db).create("machines")
    assert client.get("/images", headers={"X-API-Key": key}).status_code == 200
