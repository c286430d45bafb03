"""The functions trust the edge: with an authorizer's verdict in the event they reach its tenant without a
key lookup; JWT claims from API Gateway's authorizer are still checked for the issuer and the tenant claim;
without a verdict everything works as before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from edge_events import authorize, authorizer_event, call, http_event, respond
from support.auth import Caller

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.auth.tenant import get_or_create_tenant
from imagesearch.config import AuthMode, Settings
from imagesearch.db import Database
from imagesearch.images.schemas import UploadCreate
from imagesearch.runtime import configure, get_runtime

ISSUER = "https://id.example.test/"
AUDIENCE = "imagesearch-api"
ALL_IMAGES: dict[str, str] = {}  # GET /images without the sample's status filter
DOWN = "postgresql://imagesearch@127.0.0.1:1/imagesearch"  # nothing listens on port 1


@contextmanager
def no_key_table(db: Database) -> Iterator[None]:
    """The API keys table is gone for the block: any key lookup fails (a 500), so a tenant reached inside
    it was reached without one."""
    with db.connection() as conn:
        conn.execute("ALTER TABLE api_keys RENAME TO api_keys_away")
    try:
        yield
    finally:
        with db.connection() as conn:
            conn.execute("ALTER TABLE api_keys_away RENAME TO api_keys")


def verdict_for(caller: Caller) -> dict[str, Any]:
    """The context the authorizer returns for this caller (what API Gateway hands the function)."""
    result = authorize(authorizer_event(caller.headers))
    assert result["isAuthorized"] is True
    context: dict[str, Any] = result["context"]
    return context


def tenant_id(db: Database, name: str, issuer: str | None = None) -> str:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT id::text FROM tenants WHERE name = %s AND issuer IS NOT DISTINCT FROM %s", (name, issuer)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_an_authorizer_verdict_reaches_its_tenant_without_a_key_lookup(
    alice: Caller, bob: Caller, db: Database
) -> None:
    alices, bobs = verdict_for(alice), verdict_for(bob)
    with no_key_table(db):
        status, created = call("upload", http_event("http-post-uploads.json", lambda_context=alices))
        assert status == 201, created
        assert f"/originals/{tenant_id(db, 'alice-corp')}/" in created["upload_url"]
        status, listed = call(
            "upload", http_event("http-get-images.json", query=ALL_IMAGES, lambda_context=alices)
        )
        assert status == 200 and [i["id"] for i in listed["items"]] == [created["id"]]
        status, listed = call(
            "upload", http_event("http-get-images.json", query=ALL_IMAGES, lambda_context=bobs)
        )
        assert status == 200 and listed["items"] == []
        status, found = call("search", http_event("http-post-search.json", lambda_context=alices))
        assert status == 200, found
        # without a verdict the function looks the key up itself, and meets the missing table
        status, problem = call("upload", http_event("http-get-images.json", headers=alice.headers))
        assert status == 500, problem


def test_without_a_verdict_the_functions_authenticate_as_before(alice: Caller, db: Database) -> None:
    status, problem = call("upload", http_event("http-get-images.json"))
    assert status == 401 and problem["status"] == 401
    status, _ = call("upload", http_event("http-get-images.json", headers=alice.headers))
    assert status == 200
    status, _ = call("search", http_event("http-post-search.json", headers={"X-API-Key": alice.key}))
    assert status == 200
    status, _ = call("upload", http_event("http-get-images.json", headers={"X-API-Key": alice.key + "x"}))
    assert status == 401


def test_a_verdict_the_authorizer_deferred_is_checked_by_the_function(
    keyed_settings: Settings, alice: Caller, db: Database
) -> None:
    """The database was down when the authorizer ran: the function checks the key itself."""
    deferred = {"deferred": "DatabaseUnavailable"}
    event = http_event("http-get-images.json", headers=alice.headers, lambda_context=deferred)
    assert call("upload", event)[0] == 200
    assert call("upload", http_event("http-get-images.json", lambda_context=deferred))[0] == 401
    # Still down for the function: a 503 problem with Retry-After, which clients retry (API Gateway's answer
    # to a failed authorizer would have been a bare 500).
    configure(keyed_settings.model_copy(update={"database_url": DOWN, "db_connect_timeout": 1.0}))
    response = respond("upload", event)
    assert response["statusCode"] == 503, response
    assert response["headers"]["content-type"] == "application/problem+json"
    assert int(response["headers"]["retry-after"]) >= 1


@pytest.mark.parametrize(
    "context",
    [{"tenant_id": "not-a-uuid", "tenant_name": "x"}, {"tenant_id": "00000000-0000-0000-0000-000000000009"}],
    ids=["bad-id", "no-name"],
)
def test_a_malformed_verdict_is_not_trusted(alice: Caller, db: Database, context: dict[str, str]) -> None:
    status, _ = call("upload", http_event("http-get-images.json", lambda_context=context))
    assert status == 401
    status, _ = call(
        "upload", http_event("http-get-images.json", headers=alice.headers, lambda_context=context)
    )
    assert status == 200


def test_the_tenant_rate_limit_still_applies_behind_the_authorizer(
    keyed_settings: Settings, alice: Caller, bob: Caller, db: Database
) -> None:
    configure(keyed_settings.model_copy(update={"rate_limit_per_second": 1.0, "rate_limit_burst": 3}))
    alices, bobs = verdict_for(alice), verdict_for(bob)
    statuses = [
        call("upload", http_event("http-get-images.json", lambda_context=alices))[0] for _ in range(6)
    ]
    assert statuses[:3] == [200] * 3 and statuses.count(429) >= 2, statuses
    assert call("upload", http_event("http-get-images.json", lambda_context=bobs))[0] == 200


# --- jwt mode: API Gateway's JWT authorizer verified the token; the function checks issuer and tenant ---


@pytest.fixture
def jwt_settings(settings: Settings, db: Database) -> Settings:
    """jwt mode; the key set's URL is never fetched when the claims come verified from the edge."""
    value = settings.model_copy(
        update={
            "auth_mode": AuthMode.JWT,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_jwks_url": "http://127.0.0.1:9/never-fetched.json",
            "jwt_tenant_claim": "custom:tenant",
            "api_key_cache_seconds": 0.0,
        }
    )
    configure(value)
    return value


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims as API Gateway hands them on (string values)."""
    value = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "custom:tenant": "acme", "exp": "1795741200"}
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not None}


def test_verified_claims_reach_the_issuers_tenant(jwt_settings: Settings, db: Database) -> None:
    status, created = call("upload", http_event("http-post-uploads.json", jwt_claims=claims()))
    assert status == 201, created
    assert f"/originals/{tenant_id(db, 'acme', ISSUER)}/" in created["upload_url"]
    with no_key_table(db):  # and again from the process's cache of the issuer's tenants
        status, listed = call(
            "upload", http_event("http-get-images.json", query=ALL_IMAGES, jwt_claims=claims())
        )
    assert status == 200 and [i["id"] for i in listed["items"]] == [created["id"]]
    status, listed = call(
        "upload",
        http_event("http-get-images.json", query=ALL_IMAGES, jwt_claims=claims(**{"custom:tenant": "zeta"})),
    )
    assert status == 200 and listed["items"] == []


def test_a_claim_naming_another_namespaces_tenant_gets_the_issuers_own(
    jwt_settings: Settings, db: Database
) -> None:
    """`acme` of an API key and `acme` of another identity provider each hold an image; verified claims
    naming `acme` reach neither of them, but this issuer's own `acme`."""
    key, _ = ApiKeys(db).create("acme")
    status, created = call("upload", http_event("http-post-uploads.json", headers={"X-API-Key": key}))
    assert status == 201, created
    with db.connection() as conn:
        theirs = get_or_create_tenant(conn, "acme", issuer="https://other-idp.example.test/")
    get_runtime().images.create_upload(
        theirs, UploadCreate(filename="theirs.png", content_type="image/png", size=5)
    )
    status, listed = call("upload", http_event("http-get-images.json", query=ALL_IMAGES, jwt_claims=claims()))
    assert status == 200 and listed["items"] == []
    ours = tenant_id(db, "acme", ISSUER)
    assert ours not in (tenant_id(db, "acme"), str(theirs.id))


@pytest.mark.parametrize(
    "bad",
    [
        claims(**{"custom:tenant": None}),
        claims(**{"custom:tenant": "  "}),
        claims(**{"custom:tenant": ["acme"]}),
        claims(iss="https://other-idp.example.test/"),
        claims(iss=None),
    ],
    ids=["no-tenant", "blank-tenant", "list-tenant", "other-issuer", "no-issuer"],
)
def test_claims_without_a_tenant_or_from_another_issuer_are_401(
    jwt_settings: Settings, db: Database, bad: dict[str, Any]
) -> None:
    status, problem = call("upload", http_event("http-get-images.json", jwt_claims=bad))
    assert status == 401 and problem["status"] == 401, problem


def test_an_api_key_verdict_is_trusted_in_jwt_mode_too(jwt_settings: Settings, db: Database) -> None:
    """Keys stay valid beside tokens; a verdict on one from the Lambda authorizer needs no lookup either."""
    key, _ = ApiKeys(db).create("machines")
    status, _ = call("upload", http_event("http-get-images.json", headers={"X-API-Key": key}))
    assert status == 200
