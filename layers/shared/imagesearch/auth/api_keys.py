"""API keys: `isk_<prefix>_<secret>`, stored as a SHA-256 hash with the prefix for lookup.

The secret carries 256 random bits, so a fast hash is enough (no password stretching). Verification always
hashes the presented key and compares digests with `hmac.compare_digest`, including when the prefix is
unknown, so the time taken says nothing about how much of a key matched. Last use is written at most once
per `touch_seconds` per key, never on every request.

Verified keys are cached for `cache_seconds`, but no longer than the revocation epoch stays unchanged: every
revocation bumps one counter (`auth_state.revocation_epoch`), each process re-reads it at most every
`revocation_check_seconds` (with the next key lookup, or alone), and drops its whole cache when it moved.
So a revoked key is refused everywhere within `revocation_check_seconds` (plus a replica's lag), at the
cost of one single-row read per process per that interval, not one per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from imagesearch.auth.tenant import Tenant, get_or_create_tenant
from imagesearch.db import Database
from imagesearch.errors import NotFound, ServiceUnavailable, Unauthorized
from imagesearch.logs import logger

KEY_PREFIX = "isk_"
PREFIX_LENGTH = 12  # hex characters: 48 bits, a lookup handle (not a secret)
_DUMMY_HASH = hashlib.sha256(b"imagesearch: no such key").digest()


@dataclass
class ApiKeyRecord:
    id: UUID
    tenant_id: UUID
    tenant_name: str
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def generate_key() -> tuple[str, str]:
    """A new key and its lookup prefix."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    return f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def parse_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


_READ_EPOCH = "SELECT coalesce((SELECT revocation_epoch FROM auth_state), 0)"
_BUMP_EPOCH = (
    "INSERT INTO auth_state (id, revocation_epoch) VALUES (true, 1) "
    "ON CONFLICT (id) DO UPDATE SET revocation_epoch = auth_state.revocation_epoch + 1"
)

_SELECT = """
    SELECT k.id, k.tenant_id, t.name AS tenant_name, k.prefix, k.name, k.created_at, k.last_used_at,
           k.revoked_at
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
"""


class ApiKeys:
    """Create, list, revoke and verify keys in one database."""

    def __init__(
        self,
        db: Database,
        *,
        writer: Database | None = None,
        touch_seconds: float = 300.0,
        cache_seconds: float = 0.0,
        revocation_check_seconds: float = 0.0,
    ) -> None:
        self.db = db
        self.writer = writer or db  # last-use updates go to the primary when `db` is a replica
        self.touch_seconds = touch_seconds
        self.cache_seconds = cache_seconds
        self.revocation_check_seconds = revocation_check_seconds  # 0: only cache_seconds bounds the cache
        self._epoch: int | None = None
        self._epoch_read_at = float("-inf")
        self._touched: dict[UUID, float] = {}
        self._verified: dict[bytes, tuple[float, Tenant, UUID]] = {}
        self._lock = threading.Lock()

    def create(self, tenant_name: str, *, name: str | None = None) -> tuple[str, ApiKeyRecord]:
        """A new key for the tenant (created if new). The key itself is returned once and never stored."""
        key, prefix = generate_key()
        with self.db.connection() as conn:
            tenant = get_or_create_tenant(conn, tenant_name)
            conn.execute(
                "INSERT INTO api_keys (tenant_id, prefix, key_hash, name) VALUES (%s, %s, %s, %s)",
                (tenant.id, prefix, hash_key(key), name),
            )
            record = self._get(conn, prefix)
        assert record is not None
        return key, record

    def list(self, *, tenant_name: str | None = None) -> list[ApiKeyRecord]:
        with self.db.connection() as conn, conn.cursor(row_factory=class_row(ApiKeyRecord)) as cur:
            cur.execute(
                _SELECT
                + " WHERE %(tenant)s::text IS NULL OR t.name = %(tenant)s ORDER BY t.name, k.created_at",
                {"tenant": tenant_name},
            )
            return cur.fetchall()

    def revoke(self, prefix_or_id: str) -> ApiKeyRecord:
        """Revoke by prefix (as `keys list` shows it) or id; revoking twice is harmless."""
        with self.db.connection() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
                "WHERE prefix = %s OR id::text = %s",
                (prefix_or_id, prefix_or_id),
            )
            conn.execute(_BUMP_EPOCH)
            record = self._get(conn, prefix_or_id) or self._get_by_id(conn, prefix_or_id)
        if record is None:
            raise NotFound(f"no API key {prefix_or_id!r}")
        with self._lock:
            self._verified = {h: v for h, v in self._verified.items() if v[2] != record.id}
        return record

    def cached(self, key: str) -> Tenant | None:
        """The tenant of a key verified within cache_seconds, without touching the database; None also when
        the revocation epoch is due for a check (then `verify` reads it)."""
        return self._from_cache(hash_key(key), time.monotonic())

    def _from_cache(self, digest: bytes, now: float) -> Tenant | None:
        if self._epoch_due(now):
            return None
        cached = self._verified.get(digest)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        return None

    def _epoch_due(self, now: float) -> bool:
        interval = self.revocation_check_seconds
        return interval > 0 and now - self._epoch_read_at >= interval

    def _saw_epoch(self, epoch: int, read_at: float) -> None:
        """Record the epoch read at `read_at`; a new one empties the cache of verified keys."""
        with self._lock:
            if epoch != self._epoch:
                self._verified.clear()
                self._epoch = epoch
            self._epoch_read_at = max(self._epoch_read_at, read_at)

    def verify(self, key: str) -> Tenant:
        """The tenant of a valid, unrevoked key; Unauthorized otherwise (same answer for every failure)."""
        digest = hash_key(key)
        now = time.monotonic()
        if digest in self._verified and self._epoch_due(now):
            # A cached key: the epoch alone says whether it still holds. (An uncached key's lookup below
            # reads the epoch with it.)
            with self.db.connection() as conn:
                row = conn.execute(_READ_EPOCH).fetchone()
            self._saw_epoch(row[0] if row else 0, now)
        tenant = self._from_cache(digest, now)
        if tenant is not None:
            return tenant
        prefix = parse_prefix(key)
        if prefix is None:
            raise Unauthorized("malformed API key")
        with self.db.connection() as conn:
            # The epoch comes in the same snapshot as the key: a key cached with it was unrevoked then.
            row = conn.execute(
                "SELECT k.id, k.key_hash, k.revoked_at, t.id, t.name, "
                f"({_READ_EPOCH}) FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = %s",
                (prefix,),
            ).fetchone()
        if row is not None:
            self._saw_epoch(row[5], now)
        stored = bytes(row[1]) if row is not None else _DUMMY_HASH
        matches = hmac.compare_digest(digest, stored)  # compared even for unknown prefixes
        if row is None or not matches or row[2] is not None:
            raise Unauthorized("invalid or revoked API key")
        key_id, tenant = row[0], Tenant(id=row[3], name=row[4])
        if self.cache_seconds > 0:
            with self._lock:
                self._verified[digest] = (now, tenant, key_id)
        self._touch(key_id, now)
        return tenant

    def _touch(self, key_id: UUID, now: float) -> None:
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < self.touch_seconds:
                return
            self._touched[key_id] = now
        try:
            with self.writer.connection() as conn:
                conn.execute(
                    "UPDATE api_keys SET last_used_at = now() WHERE id = %s "
                    "AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => %s))",
                    (key_id, self.touch_seconds),
                )
        except ServiceUnavailable:  # bookkeeping only: the key still works
            logger.warning("could not record the API key's last use", extra={"key_id": str(key_id)})

    @staticmethod
    def _get(conn: psycopg.Connection, prefix: str) -> ApiKeyRecord | None:
        with conn.cursor(row_factory=class_row(ApiKeyRecord)) as cur:
            cur.execute(_SELECT + " WHERE k.prefix = %s", (prefix,))
            return cur.fetchone()

    @staticmethod
    def _get_by_id(conn: psycopg.Connection, key_id: str) -> ApiKeyRecord | None:
        with conn.cursor(row_factory=class_row(ApiKeyRecord)) as cur:
            cur.execute(_SELECT + " WHERE k.id::text = %s", (key_id,))
            return cur.fetchone()
