"""Per-tenant rate limits: a bucket shared by every process, 429 problems with Retry-After, other tenants
untouched, and a flooding tenant refused from memory."""

from __future__ import annotations

import time
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from support.auth import Caller

from imagesearch.auth.api_keys import ApiKeys
from imagesearch.auth.rate_limit import RateLimiter
from imagesearch.auth.tenant import DEFAULT_TENANT
from imagesearch.config import Settings
from imagesearch.db import Database
from imagesearch.errors import TooManyRequests
from imagesearch.local.server import local_app
from imagesearch.runtime import configure

TENANT = DEFAULT_TENANT.id


def attempts(limiter: RateLimiter, tenant: UUID, n: int) -> tuple[int, list[int]]:
    """How many of n immediate requests passed, and the Retry-After of those refused."""
    passed, waits = 0, []
    for _ in range(n):
        try:
            limiter.take(tenant)
            passed += 1
        except TooManyRequests as e:
            waits.append(e.retry_after)
    return passed, waits


def test_a_burst_passes_then_requests_are_refused_until_tokens_come_back(db: Database) -> None:
    limiter = RateLimiter(db, rate=4.0, burst=5, lease=1)
    passed, waits = attempts(limiter, TENANT, 12)
    assert passed == 5  # the bucket's size; the refill in a few milliseconds is under one token
    assert len(waits) == 7 and all(w >= 1 for w in waits)
    time.sleep(0.6)  # 4/s: two tokens back
    passed, _ = attempts(limiter, TENANT, 5)
    assert 2 <= passed <= 3


def test_the_bucket_is_shared_by_every_process(db: Database) -> None:
    """Two processes (two limiters on one database) together get the bucket once, not once each."""
    processes = [RateLimiter(db, rate=1.0, burst=12, lease=3) for _ in range(2)]
    started = time.monotonic()
    passed = sum(attempts(process, TENANT, 1)[0] for _ in range(20) for process in processes)
    elapsed = time.monotonic() - started
    # At most the bucket plus what refilled meanwhile; at least the bucket minus the leases left half-spent.
    assert 12 - 2 * 2 <= passed <= 12 + elapsed * 1.0 + 1


def test_an_empty_bucket_is_refused_from_memory_without_the_database(db: Database) -> None:
    limiter = RateLimiter(db, rate=0.5, burst=1, lease=1)
    assert attempts(limiter, TENANT, 2)[0] == 1
    with db.connection() as conn:
        conn.execute("ALTER TABLE rate_limits RENAME TO rate_limits_away")  # a lease would now fail
    try:
        passed, waits = attempts(limiter, TENANT, 50)
        assert passed == 0 and len(waits) == 50 and all(1 <= w <= 2 for w in waits)
    finally:
        with db.connection() as conn:
            conn.execute("ALTER TABLE rate_limits_away RENAME TO rate_limits")


def test_requests_pass_when_the_database_cannot_be_reached() -> None:
    """The limit guards fairness; without a database the request goes on and meets the outage itself."""
    unreachable = Database("postgresql://imagesearch@127.0.0.1:1/none", connect_timeout=1)
    limiter = RateLimiter(unreachable, rate=1.0, burst=1, lease=1)
    assert attempts(limiter, TENANT, 2) == (2, [])


@pytest.fixture
def limited_client(keyed_settings: Settings, db: Database) -> TestClient:
    configure(keyed_settings.model_copy(update={"rate_limit_per_second": 1.0, "rate_limit_burst": 4}))
    return TestClient(local_app(), raise_server_exceptions=False)


def test_a_tenant_over_its_limit_gets_429s_and_another_tenant_does_not(
    limited_client: TestClient, alice: Caller, bob: Caller, db: Database
) -> None:
    with limited_client as client:
        statuses = []
        for _ in range(12):
            response = client.post("/search", headers=alice.headers, json={"query": "red"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["status"] == 429
        assert statuses[:4] == [200] * 4 and statuses.count(429) >= 7, statuses
        for _ in range(3):  # bob's bucket is his own
            assert client.post("/search", headers=bob.headers, json={"query": "red"}).status_code == 200
        assert client.get("/health").status_code in (200, 503)  # not limited, not a tenant's request


def test_the_limit_is_off_by_default(keyed_settings: Settings, alice: Caller) -> None:
    assert keyed_settings.rate_limit is None
    with TestClient(local_app()) as client:
        for _ in range(30):
            assert client.get("/images", headers=alice.headers).status_code == 200


def test_keys_of_one_tenant_share_its_bucket(limited_client: TestClient, alice: Caller, db: Database) -> None:
    second, _ = ApiKeys(db).create(alice.tenant)
    with limited_client as client:
        statuses = [
            client.get("/images", headers={"X-API-Key": key}).status_code
            for _ in range(4)
            for key in (alice.key, second)
        ]
    assert statuses.count(200) == 4 and statuses.count(429) == 4, statuses
