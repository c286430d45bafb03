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


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {"kid": kid, "use": "sig", "alg": "RS256"}


class JwksServer:
    """The identity provider's key set over real HTTP; `serve` rotates it, `fetches` counts downloads."""

    def __init__(self) -> None:
        self.keys = [public_jwk(SIGNING_KEY, "k1")]
        self.fetches = 0
        jwks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def serve(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def jwks_url(jwks: JwksServer) -> str:
    return jwks.url


def jwt_client(settings: Settings, jwks_url: str, **overrides: Any) -> TestClient:
    configure(
        settings.model_copy(
            update={
                "auth_mode": AuthMode.JWT,
                "jwt_issuer": ISSUER,
                "jwt_audience": AUDIENCE,
                "jwt_jwks_url": jwks_url,
                "jwt_tenant_claim": "org",
                **overrides,
            }
        )
    )
    return TestClient(local_app(), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings, db: Database, jwks_url: str) -> Iterator[TestClient]:
    with jwt_client(settings, jwks_url, api_key_cache_seconds=0.0) as test_client:
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


def test_a_key_the_provider_removed_is_refused_once_the_key_set_expires(
    settings: Settings, db: Database, jwks: JwksServer
) -> None:
    """Rotation after a leak: k1 leaves the key set, k2 replaces it. Within the key set's lifespan tokens
    signed with k1 stop working, and tokens signed with k2 work."""
    new_key = rsa_key()
    with jwt_client(settings, jwks.url, jwt_jwks_lifespan_seconds=1.0) as client:
        assert client.get("/images", headers=bearer(token())).status_code == 200
        for _ in range(3):
            assert client.get("/images", headers=bearer(token())).status_code == 200
        assert jwks.fetches == 1  # cached between requests

        jwks.serve(public_jwk(new_key, "k2"))
        time.sleep(1.2)
        refused = client.get("/images", headers=bearer(token()))
        assert refused.status_code == 401, refused.text
        assert client.get("/images", headers=bearer(token(new_key, kid="k2"))).status_code == 200


def test_tokens_cannot_name_their_way_into_an_api_key_tenant(settings: Settings, db: Database) -> None:
    """A token whose claim names the tenant of an API key (or `default`) gets a tenant of its own issuer."""
    with TestClient(local_app()) as plain:
        configure(settings.model_copy(update={"auth_mode": AuthMode.API_KEY, "api_key_cache_seconds": 0.0}))
        key, _ = ApiKeys(db).create("acme")
        created = plain.post(
            "/uploads",
            headers={"X-API-Key": key},
            json={"filename": "secret.png", "content_type": "image/png", "size": 5},
        )
        assert created.status_code == 201, created.text

    jwks = JwksServer()
    try:
        with jwt_client(settings, jwks.url) as client:
            for name in ("acme", "default"):
                listed = client.get("/images", headers=bearer(token(org=name)))
                assert listed.status_code == 200
                assert listed.json()["items"] == [], f"a token naming {name!r} saw another namespace's images"
            # The API key still sees its own tenant's image beside the token's tenant of the same name.
            assert len(client.get("/images", headers={"X-API-Key": key}).json()["items"]) == 1
    finally:
        jwks.close()
    with db.connection() as conn:
        rows = conn.execute("SELECT name, issuer FROM tenants WHERE name = 'acme' ORDER BY issuer").fetchall()
    assert rows == [("acme", ISSUER), ("acme", None)]
