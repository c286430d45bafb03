"""GET /health: anonymous callers get the shallow answer (nothing behind the process is touched), callers
with a valid key or token the deep check; with auth off every caller gets the deep check, as before."""

from __future__ import annotations

from edge_events import call, http_event
from fastapi.testclient import TestClient
from support.auth import Caller

from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.local.postgres import EmbeddedPostgres
from imagesearch.local.server import local_app
from imagesearch.runtime import configure, get_runtime

SHALLOW = {"status": "ok", "database": "unchecked", "model": None, "check": "shallow"}
DOWN = "postgresql://imagesearch@127.0.0.1:1/imagesearch"  # nothing listens on port 1


def built_parts() -> set[str]:
    """The parts the process's runtime has built so far (a database pool, storage, a model...)."""
    return set(get_runtime()._parts)


def test_anonymous_callers_get_the_shallow_answer_without_the_database(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == SHALLOW
    assert built_parts() == set()  # no pool, no storage, no model: nothing was even built


def test_a_valid_key_gets_the_deep_check(client: TestClient, alice: Caller) -> None:
    for headers in (alice.headers, {"X-API-Key": alice.key}):
        response = client.get("/health", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["check"] == "deep" and body["database"] == "ok" and body["status"] == "ok"
        assert body["model"]


def test_credentials_that_do_not_hold_are_401_not_a_shallow_answer(client: TestClient, alice: Caller) -> None:
    for headers in ({"X-API-Key": alice.key + "x"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = client.get("/health", headers=headers)
        assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"


def test_the_shallow_answer_holds_with_the_database_unreachable(keyed_settings: Settings) -> None:
    configure(keyed_settings.model_copy(update={"database_url": DOWN, "db_connect_timeout": 2.0}))
    runtime = get_runtime()
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        for _ in range(20):
            response = client.get("/health")
            assert response.status_code == 200 and response.json() == SHALLOW
        assert "database" not in runtime._parts  # never built a pool, so never waited for a connection
        # a caller with a key asks for the deep check: the key cannot be checked and the check says why
        response = client.get("/health", headers={"X-API-Key": "isk_0123456789ab_" + "x" * 43})
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "database": "unavailable",
            "model": response.json()["model"],
            "check": "deep",
        }


def test_the_shallow_answer_holds_with_the_database_stopped(
    keyed_settings: Settings, postgres: EmbeddedPostgres, db: Database, alice: Caller
) -> None:
    """The session's real server, stopped: anonymous probes still get 200 (and a known caller the 503)."""
    configure(keyed_settings.model_copy(update={"db_connect_timeout": 1.0}))
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        postgres.stop()
        try:
            assert client.get("/health").json() == SHALLOW
            deep = client.get("/health", headers=alice.headers)
            assert deep.status_code == 503 and deep.json()["database"] == "unavailable"
        finally:
            postgres.start()


def test_behind_the_authorizer_a_verdict_gets_the_deep_check(keyed_settings: Settings, alice: Caller) -> None:
    """/health has no authorizer in the template; a verdict in the event (another route, a test) counts."""
    tenant = {"tenant_id": "00000000-0000-0000-0000-000000000001", "tenant_name": "default"}
    status, body = call("upload", http_event("http-get-health.json", lambda_context=tenant))
    assert status == 200 and body["check"] == "deep"
    assert call("upload", http_event("http-get-health.json")) == (200, SHALLOW)


def test_with_auth_off_every_caller_gets_the_deep_check(settings: Settings, db: Database) -> None:
    with TestClient(local_app()) as client:
        body = client.get("/health").json()
    assert body["check"] == "deep" and body["database"] == "ok"


def test_with_auth_off_the_deep_check_reports_a_database_that_is_down(settings: Settings) -> None:
    configure(settings.model_copy(update={"database_url": DOWN, "db_connect_timeout": 1.0}))
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable" and response.json()["check"] == "deep"
