"""The API-key authorizer (functions/authorizer) on payload-2.0 events: the verdict, its context, what it
logs, and what it does when the database is down."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest
from edge_events import authorize, authorizer_event
from support.auth import Caller

from imagesearch.auth import edge
from imagesearch.auth.api_keys import ApiKeys, parse_prefix
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.runtime import configure

DENIED = {"isAuthorized": False}


def tenant_row(db: Database, name: str) -> tuple[str, str]:
    with db.connection() as conn:
        row = conn.execute("SELECT id::text, name FROM tenants WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return row[0], row[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_valid_key_is_authorized_with_its_tenant_in_the_context(alice: Caller, db: Database) -> None:
    result = authorize(authorizer_event(alice.headers))
    tenant_id, name = tenant_row(db, "alice-corp")
    assert result == {
        "isAuthorized": True,
        "context": {"tenant_id": tenant_id, "tenant_name": name, "key_prefix": parse_prefix(alice.key)},
    }
    json.dumps(result)  # what Lambda returns to API Gateway: plain JSON


def test_x_api_key_works_when_the_authorizer_has_no_identity_source(alice: Caller, db: Database) -> None:
    """With the result cache off (ApiKeyAuthCacheSeconds=0) there is no identity source: both headers work."""
    result = authorize(authorizer_event({"X-API-Key": alice.key}, identity=()))
    assert result["isAuthorized"] is True
    assert result["context"]["tenant_id"] == tenant_row(db, "alice-corp")[0]


def test_a_key_outside_the_identity_source_is_never_trusted(alice: Caller, bob: Caller) -> None:
    """API Gateway caches the verdict under the identity source's values. A verdict on another header's key
    would be served to the next request with the same identity source: bob's X-API-Key beside alice's
    valid Authorization must not make bob's value an alias of alice's tenant."""
    event = authorizer_event(
        {**alice.headers, "X-API-Key": "isk_000000000000_nothing"}, identity=("x-api-key",)
    )
    assert authorize(event) == DENIED
    # ...and the same headers with Authorization as the identity source are alice's
    assert authorize(authorizer_event({**alice.headers, "X-API-Key": bob.key}))["isAuthorized"] is True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer isk_zzzzzzzzzzzz_secret"},
        {"Authorization": "Bearer isk_0123456789ab_" + "x" * 43},
        {"Authorization": "Bearer isk_" + "a" * 500},
        {"X-API-Key": ""},
    ],
    ids=["missing", "basic", "empty-bearer", "not-a-key", "bad-prefix", "unknown-key", "overlong", "empty"],
)
def test_missing_malformed_and_unknown_keys_are_refused(
    alice: Caller, headers: dict[str, str], db: Database
) -> None:
    identity = ("authorization",) if "Authorization" in headers else ()
    assert authorize(authorizer_event(headers, identity=identity)) == DENIED


def test_a_wrong_secret_behind_a_real_prefix_is_refused(alice: Caller) -> None:
    tampered = alice.key[:-4] + ("AAAA" if not alice.key.endswith("AAAA") else "BBBB")
    assert authorize(authorizer_event({"Authorization": f"Bearer {tampered}"})) == DENIED


@pytest.mark.parametrize(
    "transform",
    [
        lambda key: key + "\u200b",  # zero-width space
        lambda key: key[:8] + "\u202e" + key[8:],  # right-to-left override
        lambda key: key.replace("isk_", "\uff49sk_"),  # fullwidth i
        lambda key: key + "\ud800",  # a lone surrogate: not even encodable as UTF-8
        lambda key: key + "\U0001f511",  # emoji
        lambda key: key + "\x00",
        lambda key: "\u0130" + key[1:],  # dotted capital I, which lower() expands
    ],
    ids=["zero-width", "rtl-override", "fullwidth", "lone-surrogate", "emoji", "nul", "dotted-i"],
)
def test_odd_unicode_around_a_valid_key_is_refused_without_an_error(
    alice: Caller, transform: Any, db: Database
) -> None:
    odd = transform(alice.key)
    assert authorize(authorizer_event({"Authorization": f"Bearer {odd}"})) == DENIED
    assert authorize(authorizer_event({"X-API-Key": odd}, identity=())) == DENIED
    # a non-breaking space instead of the space after Bearer is not the Bearer scheme
    assert authorize(authorizer_event({"Authorization": f"Bearer\u00a0{alice.key}"})) == DENIED


def test_a_revoked_key_is_refused(alice: Caller, db: Database) -> None:
    assert authorize(authorizer_event(alice.headers))["isAuthorized"] is True
    ApiKeys(db).revoke(parse_prefix(alice.key) or "")
    assert authorize(authorizer_event(alice.headers)) == DENIED


def test_a_warm_authorizer_refuses_a_revoked_key_within_the_check_interval(
    keyed_settings: Settings, alice: Caller, db: Database
) -> None:
    """The authorizer keeps the runtime's key cache (30 s) and revocation epoch, as the functions did."""
    configure(
        keyed_settings.model_copy(
            update={"api_key_cache_seconds": 30.0, "api_key_revocation_check_seconds": 0.3}
        )
    )
    assert authorize(authorizer_event(alice.headers))["isAuthorized"] is True
    with db.connection() as conn:
        conn.execute("ALTER TABLE api_keys RENAME TO api_keys_away")  # a key lookup would now fail
    try:
        assert authorize(authorizer_event(alice.headers))["isAuthorized"] is True  # from the cache
    finally:
        with db.connection() as conn:
            conn.execute("ALTER TABLE api_keys_away RENAME TO api_keys")
    ApiKeys(db).revoke(parse_prefix(alice.key) or "")  # the CLI, elsewhere
    time.sleep(0.4)
    assert authorize(authorizer_event(alice.headers)) == DENIED


def test_last_use_is_recorded_by_the_authorizer(alice: Caller, db: Database) -> None:
    with db.connection() as conn:
        assert conn.execute("SELECT last_used_at FROM api_keys").fetchone() == (None,)
    authorize(authorizer_event(alice.headers))
    with db.connection() as conn:
        row = conn.execute("SELECT last_used_at FROM api_keys").fetchone()
    assert row is not None and row[0] is not None


def test_with_the_database_down_the_check_is_left_to_the_function(
    keyed_settings: Settings, alice: Caller
) -> None:
    """API Gateway answers a bare 500 when an authorizer fails: the authorizer lets the request through,
    marked as unchecked, and the function (which needs the database too) answers 503 with Retry-After."""
    down = f"postgresql://imagesearch@127.0.0.1:{closed_port()}/imagesearch"
    configure(keyed_settings.model_copy(update={"database_url": down, "db_connect_timeout": 1.0}))
    result = authorize(authorizer_event(alice.headers))
    assert result == {"isAuthorized": True, "context": {edge.DEFERRED: "DatabaseUnavailable"}}
    assert edge.verified_tenant({"requestContext": {"authorizer": {"lambda": result["context"]}}}) is None
    # a malformed key is still refused at once, database or not
    assert authorize(authorizer_event({"Authorization": "Bearer isk_nope"})) == DENIED


def test_the_key_is_never_logged(alice: Caller, caplog: pytest.LogCaptureFixture) -> None:
    tampered = alice.key[:-4] + ("AAAA" if not alice.key.endswith("AAAA") else "BBBB")
    with caplog.at_level(logging.INFO, logger="imagesearch"):
        for key in (alice.key, tampered):
            authorize(authorizer_event({"Authorization": f"Bearer {key}"}))
    verdicts = [vars(r) for r in caplog.records if hasattr(r, "verdict")]
    assert [r["verdict"] for r in verdicts] == ["allow", "deny"]
    prefixes = {r["key_prefix"] for r in verdicts}
    assert prefixes == {parse_prefix(alice.key)}  # the lookup handle only
    logged = json.dumps([vars(r) for r in caplog.records], default=str)
    secret = alice.key.split("_", 2)[2]  # the secret may itself hold "_"
    assert secret[:-4] not in logged
