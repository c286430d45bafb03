"""API keys: hashed at rest, shown once, revocable, and every failure is a 401 problem."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller

from imagesearch.auth import api_keys as keys_module
from imagesearch.auth.api_keys import ApiKeys, parse_prefix
from imagesearch.cli.main import main
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.errors import Unauthorized
from imagesearch.local.server import local_app
from imagesearch.runtime import configure


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


def test_only_a_hash_and_a_lookup_prefix_are_stored(db: Database, keyed_settings: Settings) -> None:
    key, record = ApiKeys(db).create("acme", name="ci")
    with db.connection() as conn:
        stored = conn.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
    assert stored == [(record.prefix, hashlib.sha256(key.encode()).digest())]
    assert key.startswith("isk_" + record.prefix + "_") and len(key) > 50
    assert parse_prefix(key) == record.prefix


def test_both_header_forms_authenticate(client: TestClient, alice: Caller) -> None:
    assert client.get("/images", headers=alice.headers).status_code == 200
    assert client.get("/images", headers={"X-API-Key": alice.key}).status_code == 200
    assert client.get("/health").status_code in (200, 503)  # health needs no key


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "isk_zzzzzzzzzzzz_secret"},
        {"X-API-Key": "isk_0123456789ab_" + "x" * 43},
        {"X-API-Key": "isk_" + "a" * 500},
    ],
    ids=["missing", "basic", "empty-bearer", "not-a-key", "bad-prefix", "unknown-key", "overlong"],
)
def test_missing_and_malformed_credentials_are_401(
    client: TestClient, alice: Caller, headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/images"), ("POST", "/search"), ("POST", "/uploads"), ("GET", "/images/x")):
        assert_401(client.request(method, path, headers=headers, json={"query": "x"}))


def test_a_wrong_key_with_a_real_prefix_is_401(client: TestClient, alice: Caller) -> None:
    tampered = alice.key[:-4] + ("AAAA" if not alice.key.endswith("AAAA") else "BBBB")
    assert_401(client.get("/images", headers={"X-API-Key": tampered}))


def test_revoked_keys_stop_working(client: TestClient, alice: Caller, db: Database) -> None:
    assert client.get("/images", headers=alice.headers).status_code == 200
    ApiKeys(db).revoke(parse_prefix(alice.key) or "")
    assert_401(client.get("/images", headers=alice.headers))


def test_last_use_is_recorded_without_a_write_per_request(
    client: TestClient, alice: Caller, db: Database
) -> None:
    def row_version() -> tuple[Any, Any]:
        with db.connection() as conn:
            row = conn.execute("SELECT last_used_at, xmin::text FROM api_keys").fetchone()
        assert row is not None
        return row[0], row[1]

    assert row_version()[0] is None
    client.get("/images", headers=alice.headers)
    first_use, version = row_version()
    assert first_use is not None
    for _ in range(5):
        assert client.get("/images", headers=alice.headers).status_code == 200
    assert row_version() == (first_use, version)  # no UPDATE (a new xmin) within the touch interval


def test_verification_compares_digests_whatever_the_key(
    monkeypatch: pytest.MonkeyPatch, db: Database, keyed_settings: Settings
) -> None:
    """A constant-time comparison of equal-length digests happens for unknown prefixes and near misses alike,
    so timing says nothing about how much of a key matched (bench/auth_timing.py measures it)."""
    key, record = ApiKeys(db).create("acme")
    compared: list[tuple[int, int]] = []
    real = keys_module.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", recording)
    keys = ApiKeys(db)
    near_miss = key[:-1] + ("x" if key[-1] != "x" else "y")
    unknown_prefix = "isk_" + "0" * 12 + key[len("isk_") + 12 :]
    for attempt in (near_miss, unknown_prefix, "isk_" + "f" * 12 + "_" + "z" * 43):
        with pytest.raises(Unauthorized):
            keys.verify(attempt)
    assert compared == [(32, 32)] * 3


def test_keys_command_creates_lists_and_revokes(
    db: Database, keyed_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--tenant", "zeta", "--name", "laptop"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    prefix = parse_prefix(key)
    assert prefix is not None and ApiKeys(db).verify(key).name == "zeta"

    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert prefix in listing and "zeta" in listing and "laptop" in listing and key not in listing

    assert main(["keys", "revoke", prefix]) == 0
    with pytest.raises(Unauthorized):
        ApiKeys(db).verify(key)
    assert main(["keys", "revoke", "nope"]) == 2


def test_a_revocation_reaches_every_process_within_the_check_interval(
    db: Database, keyed_settings: Settings
) -> None:
    """Two warm processes trust a key from their caches (30 s); a revocation elsewhere moves the epoch,
    which each re-reads within `revocation_check_seconds`, so neither accepts the key after that."""
    key, record = ApiKeys(db).create("acme")
    processes = [ApiKeys(db, cache_seconds=30.0, revocation_check_seconds=0.3) for _ in range(2)]
    for process in processes:
        assert process.verify(key).name == "acme"
        assert process.cached(key) is not None  # served from memory from now on

    ApiKeys(db).revoke(record.prefix)  # the CLI, in a third process
    time.sleep(0.4)
    for process in processes:
        assert process.cached(key) is None  # the epoch is due: no answer from memory
        with pytest.raises(Unauthorized):
            process.verify(key)


def test_the_epoch_check_keeps_other_keys_cached_between_revocations(
    db: Database, keyed_settings: Settings
) -> None:
    """Re-reading an unchanged epoch keeps the cache: one single-row read per interval, not a key lookup."""
    key, _ = ApiKeys(db).create("acme")
    process = ApiKeys(db, cache_seconds=30.0, revocation_check_seconds=0.2)
    process.verify(key)
    time.sleep(0.3)
    assert process.cached(key) is None
    with db.connection() as conn:
        conn.execute("ALTER TABLE api_keys RENAME TO api_keys_away")  # a key lookup would now fail
    try:
        assert process.verify(key).name == "acme"  # the epoch alone was read; the key came from the cache
        assert process.cached(key) is not None
    finally:
        with db.connection() as conn:
            conn.execute("ALTER TABLE api_keys_away RENAME TO api_keys")


def test_keys_revoke_now_returns_once_the_running_api_refuses_the_key(
    db: Database, keyed_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        keyed_settings.model_copy(
            update={"api_key_cache_seconds": 30.0, "api_key_revocation_check_seconds": 0.5}
        )
    )
    key, record = ApiKeys(db).create("acme")
    with TestClient(local_app(), raise_server_exceptions=False) as client:
        assert client.get("/images", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/images", headers={"X-API-Key": key}).status_code == 200  # cached now
        assert main(["keys", "revoke", record.prefix, "--now"]) == 0
        assert "refused everywhere now" in capsys.readouterr().out
        assert_401(client.get("/images", headers={"X-API-Key": key}))
