"""Per-tenant rate limits: one token bucket per tenant, shared by every process through the database.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one. A per-process
bucket would limit nothing on Lambda, where a container serves one request at a time and a burst simply
starts more containers, so the bucket lives in `rate_limits`. Processes *lease* tokens from it in batches
of `lease` (one UPDATE per batch, on the primary) and spend them from memory, so most requests never touch
the database. A bucket found empty tells the process when the next lease will have refilled; until then
it refuses the tenant's requests from memory (429 with Retry-After), so a flooding tenant costs the
database at most rate / lease writes per second and process.

Tokens a process leased but did not spend are lost to the others (at most `lease - 1` per process and
tenant), so a tenant gets at most `burst + rate * t` requests in `t` seconds across all processes, and may get
a little less while many processes hold part-spent leases. When the database cannot be reached the request
is let through (the limit guards fairness, not the database; the request itself then meets the outage).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from uuid import UUID

from imagesearch.db import Database
from imagesearch.errors import DatabaseUnavailable, TooManyRequests
from imagesearch.logs import logger

# One statement: refill by the time elapsed, take up to `want` whole tokens, say how many were taken. SET
# expressions all read the row as it was, so `last_grant` and `tokens` see the same refill.
_AVAILABLE = (
    "least(%(burst)s, tokens + %(rate)s * extract(epoch FROM statement_timestamp() - updated_at)::float8)"
)
_LEASE = f"""
    UPDATE rate_limits SET
        last_grant = least(%(want)s, floor({_AVAILABLE}))::integer,
        tokens = {_AVAILABLE} - least(%(want)s, floor({_AVAILABLE})),
        updated_at = statement_timestamp()
    WHERE tenant_id = %(tenant)s
    RETURNING last_grant, tokens
"""
_CREATE = """
    INSERT INTO rate_limits (tenant_id, tokens, updated_at)
    VALUES (%(tenant)s, %(burst)s, statement_timestamp())
    ON CONFLICT (tenant_id) DO NOTHING
"""


@dataclass
class _Local:
    """What this process holds of one tenant's bucket."""

    allowance: int = 0  # leased tokens not yet spent
    empty_until: float = 0.0  # monotonic time before which the shared bucket is known to be empty
    lock: threading.Lock = field(default_factory=threading.Lock)


class RateLimiter:
    def __init__(self, db: Database, *, rate: float, burst: int, lease: int) -> None:
        if rate <= 0 or burst < 1 or not 1 <= lease <= burst:
            raise ValueError("a rate limit needs rate > 0, burst >= 1 and 1 <= lease <= burst")
        self.db = db
        self.rate = rate
        self.burst = burst
        self.lease = lease
        self._tenants: dict[UUID, _Local] = {}

    def _local(self, tenant_id: UUID) -> _Local:
        local = self._tenants.get(tenant_id)
        if local is None:
            local = self._tenants.setdefault(tenant_id, _Local())
        return local

    def take_local(self, tenant_id: UUID) -> bool:
        """Spend a leased token from memory: True if one was there. Raises TooManyRequests, also from
        memory, while the shared bucket is known to be empty. False: lease (`take`, which may block)."""
        local = self._local(tenant_id)
        with local.lock:
            if local.allowance > 0:
                local.allowance -= 1
                return True
            wait = local.empty_until - time.monotonic()
        if wait > 0:
            raise _too_many(wait)
        return False

    def take(self, tenant_id: UUID) -> None:
        """One token for a request of the tenant, leasing from the shared bucket if this process has none;
        TooManyRequests (with the seconds until the next token) when the bucket is empty."""
        if self.take_local(tenant_id):
            return
        local = self._local(tenant_id)
        try:
            granted, left = self._lease(tenant_id)
        except DatabaseUnavailable:
            logger.warning(
                "rate limit not checked: the database is unavailable", extra={"tenant": str(tenant_id)}
            )
            return
        with local.lock:
            if granted > 0:
                local.allowance += granted - 1
                return
            wait = (1.0 - left) / self.rate
            # Refused from memory until a whole lease has refilled, not just one token: a flooding tenant
            # then costs at most rate / lease database writes per second and process, not one per token.
            local.empty_until = time.monotonic() + (self.lease - left) / self.rate
        raise _too_many(wait)

    def _lease(self, tenant_id: UUID) -> tuple[int, float]:
        params = {"tenant": tenant_id, "rate": self.rate, "burst": float(self.burst), "want": self.lease}
        with self.db.connection() as conn:
            row = conn.execute(_LEASE, params).fetchone()
            if row is None:  # the tenant's first request anywhere: a full bucket
                conn.execute(_CREATE, params)
                row = conn.execute(_LEASE, params).fetchone()
        assert row is not None
        return int(row[0]), float(row[1])


def _too_many(wait: float) -> TooManyRequests:
    return TooManyRequests(
        "too many requests for this tenant; retry after the time in Retry-After",
        retry_after=max(1, math.ceil(wait)),
    )
